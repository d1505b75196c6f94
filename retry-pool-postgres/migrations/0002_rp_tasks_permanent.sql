-- `permanent`: the task ended `failed` with attempts left, because the worker's `retry_if`
-- refused its error (a 404, a refused login), rather than after its attempts. A producer
-- reading the row tells the two apart, as `TaskFailure::is_permanent` does on the stream.
--
-- A new migration, so that existing databases upgrade: a constant default adds the column
-- without rewriting the table (PostgreSQL 11 and later), and every existing row reads
-- false, which is what they are.
ALTER TABLE rp_tasks ADD COLUMN permanent boolean NOT NULL DEFAULT false;
