//! The rewrite: an `async fn` listing tasks becomes a plain fn returning their completion
//! stream. What it expands to is documented once, on `pooled` in `lib.rs` ("What this
//! expands to"); the comments here say why each piece is placed as it is.
//!
//! The generated locals (`concurrency`, `pool`, `task`, `limits`, `result`) are
//! `Span::mixed_site()` and prefixed, so they neither see nor shadow the user's names.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{Block, ItemFn, Path, ReturnType, Stmt, Type};

use crate::args::{self, Concurrency, Retry};
use crate::duration::{Backoff, Nanos};
use crate::errors::Errors;
use crate::fallback;
use crate::item::{self, Target};
use crate::signature::{respan, rewrite_signature};
use crate::validate::{self, Config};

/// The whole attribute: parse, validate, then expand, or on any mistake, expand the
/// fallback and the errors.
pub(crate) fn pooled(args: TokenStream, item: TokenStream) -> TokenStream {
    let (args, mut errors) = args::parse(args);
    let krate = validate::krate(&args);
    let config = validate::validate(args, &mut errors);
    let function = match item::parse(item, &mut errors) {
        Target::Function(function) => function,
        Target::Other(tokens) => return with_errors(tokens, errors),
    };
    match config {
        Some(config) if errors.is_empty() => expand(&config, *function),
        _ => with_errors(fallback::function(&krate, *function), errors),
    }
}

fn with_errors(mut tokens: TokenStream, errors: Errors) -> TokenStream {
    if let Some(error) = errors.into_error() {
        tokens.extend(error.into_compile_error());
    }
    tokens
}

/// The function rewritten to return its stream.
fn expand(config: &Config, mut function: ItemFn) -> TokenStream {
    let krate = &config.krate;
    let declared = match &function.sig.output {
        ReturnType::Type(_, declared) => Some(&**declared),
        ReturnType::Default => None,
    };
    let body = pooled_body(config, &function.block, declared);
    rewrite_signature(krate, &mut function);
    function.block = Box::new(Block {
        brace_token: function.block.brace_token,
        stmts: vec![Stmt::Expr(syn::Expr::Verbatim(body), None)],
    });
    function.into_token_stream()
}

// Input: the user's block, listing the tasks.
// Output: the statements that build the pool and hand it the body and the attempt.
fn pooled_body(config: &Config, block: &Block, declared: Option<&Type>) -> TokenStream {
    let krate = &config.krate;
    let concurrency = local("concurrency");
    let pool = local("pool");

    // Evaluated before the body's `async move` takes the arguments, so that
    // `concurrency = self.limit` works with every receiver.
    let concurrency_value = match &config.concurrency {
        Concurrency::Literal(literal) => literal.to_token_stream(),
        Concurrency::Expr(expr) => expr.to_token_stream(),
    };
    let concurrency_value = quote_spanned!(config.concurrency.span()=> #krate::__private::concurrency(#concurrency_value));

    // Only the keys written: the defaults are the runtime's.
    let retry = config.retry.map(|retry| match retry {
        Retry::Lifo => quote!(.retry(#krate::Retry::Lifo)),
        Retry::Fifo => quote!(.retry(#krate::Retry::Fifo)),
        Retry::None => quote!(.retry(#krate::Retry::None)),
    });
    let attempts = config.attempts.map(|attempts| quote!(.attempts(#attempts)));
    let backoff = match config.backoff {
        None => TokenStream::new(),
        Some(Backoff::Fixed(delay)) => {
            let delay = duration(delay);
            quote!(.backoff(#krate::Backoff::fixed(#delay)))
        }
        Some(Backoff::Exponential { first, max }) => {
            let (first, max) = (duration(first), duration(max));
            quote!(.backoff(#krate::Backoff::exponential(#first, #max)))
        }
    };
    let timeout = config.timeout.map(|timeout| {
        let timeout = duration(timeout);
        quote!(.timeout(#timeout))
    });
    // The paths are the user's: spanned there, with the tasks' error type named, so that a
    // function of the wrong type (or of another error type) is reported on the path.
    let error_type = match declared {
        Some(declared) if !mentions_impl_trait(declared) => {
            quote!(<#declared as #krate::__private::TaskResult>::Err)
        }
        _ => quote!(_),
    };
    let retry_if = config
        .retry_if
        .as_ref()
        .map(|path| quote_spanned!(path.span()=> .retry_if::<#error_type, _>(#path)));
    let retry_after = config
        .retry_after
        .as_ref()
        .map(|path| quote_spanned!(path.span()=> .retry_after::<#error_type, _>(#path)));
    let rate = config.rate.map(|(count, per)| {
        let per = duration(per);
        quote!(.rate_limit(#count, #per))
    });
    let retry_throttle = config.retry_throttle.map(|(tokens, ratio)| {
        let ratio = proc_macro2::Literal::f64_suffixed(ratio);
        quote!(.retry_throttle(#tokens, #ratio))
    });

    // When the declared type is not a `Result`, the signature reports it; the body's
    // checks of it are spanned there too, so that rustc folds them into that one error
    // (`impl Trait` cannot be written in a `let`: such a type is left to the signature).
    let span = declared.map_or_else(Span::call_site, |declared| declared.span());
    let krate_there = respan(krate.to_token_stream(), span);
    let declared_check = match declared {
        Some(declared) if !mentions_impl_trait(declared) => quote_spanned! {span=>
            let _: ::core::marker::PhantomData<#krate_there::__private::Outcome<#declared>>;
        },
        _ => TokenStream::new(),
    };
    // Spawned, the result is taken apart into its `Ok` and `Err` where the declared type is
    // (see `spawn_call`).
    let finish = Finish {
        spawn: config.spawn,
        krate: krate_there.clone(),
        declared: span,
    };
    let attempt = match config.retry {
        Some(Retry::Lifo | Retry::Fifo) => attempt_again(krate, block, &finish),
        Some(Retry::None) | None => attempt_once(krate, block, &finish),
    };

    let call = if config.spawn {
        spawn_call(krate, block, span, &attempt, &pool)
    } else {
        let tasks = quote_spanned!(block.span()=> async move #block);
        quote_spanned!(span=> #krate_there::__private::pooled(#pool, #tasks, #attempt))
    };
    quote! {
        let #concurrency = #concurrency_value;
        let #pool = #krate::Pool::new(#concurrency)
            #retry #attempts #backoff #timeout #retry_if #retry_after #rate #retry_throttle;
        #declared_check
        #call
    }
}

// Input: the body, the attempt and the pool of a `spawn = true` function.
// Output: the call that checks what crosses to the worker threads, then builds the stream:
//
//     let checked = __private::spawnable(
//         async move { let tasks = { body }; __private::static_tasks(tasks) },
//         attempt,
//         ::core::marker::PhantomData,
//     );
//     __private::spawn_pooled(pool, checked)
//
// `spawnable` and `static_tasks` are located on the user's tasks, where rustc reports a task
// that is not `Send` or not `'static`: once, as every failing part of the bound is reported
// at the same place. `PhantomData` (the one argument whose type mentions the result) and
// `spawn_pooled` are located on the declared return type, where a `Result` that is not
// `Send` is reported, and where a type that is not a `Result` is reported by the signature
// already (rustc folds the same error at the same place into one).
fn spawn_call(
    krate: &Path,
    block: &Block,
    declared: Span,
    attempt: &TokenStream,
    pool: &syn::Ident,
) -> TokenStream {
    let (first, last) = tasks_range(block);
    let listed = local("tasks");
    let statics = located(
        quote!(#krate::__private::static_tasks(#listed)),
        first,
        last,
    );
    let body = quote_spanned!(block.span()=> async move {
        let #listed = #block;
        #statics
    });
    let attempt = located(attempt.clone(), first, last);
    let result = located(quote!(::core::marker::PhantomData), declared, declared);
    let check = located(
        quote!(#krate::__private::spawnable(#body, #attempt, #result)),
        first,
        last,
    );
    let checked = local("checked");
    // Passed through a call of the user's context: rustc reports a bound on an argument of
    // the macro's context at the attribute instead.
    let (pool_there, checked_there) = (
        quote_spanned!(declared=> ::core::convert::identity(#pool)),
        quote_spanned!(declared=> ::core::convert::identity(#checked)),
    );
    let build = located(
        quote!(#krate::__private::spawn_pooled(#pool_there, #checked_there)),
        declared,
        declared,
    );
    quote! {
        {
            let #checked = #check;
            #build
        }
    }
}

/// What becomes of an attempt's result (an `Option<R>`: `None` when it timed out).
struct Finish {
    spawn: bool,
    /// The runtime's path, spanned on the declared return type.
    krate: TokenStream,
    declared: Span,
}

impl Finish {
    // Input: the attempt's result.
    // Output: in place, the same; spawned, `__private::into_result(result)`, which takes it
    // apart into its `Ok` and `Err` types, where the declared return type is (see
    // `spawn_call`). The call is of the user's context (as is `identity`, around the
    // argument), so that rustc reports it there rather than at the attribute.
    fn apply(&self, result: TokenStream) -> TokenStream {
        if !self.spawn {
            return result;
        }
        let Finish {
            krate, declared, ..
        } = self;
        quote_spanned! {*declared=>
            #krate::__private::into_result(::core::convert::identity(#result))
        }
    }
}

// Input: a task that can be started again (an `AsyncFnMut`).
// Output: the attempt, written here where the task's type is concrete, so that its future's
// `Send` can be proven even when the task borrows the function's arguments. It captures
// nothing: in place the stream keeps it as it is, spawned it coerces to a `fn` pointer.
fn attempt_again(krate: &Path, block: &Block, finish: &Finish) -> TokenStream {
    let task = local("task");
    let limits = local("limits");
    let result = local("result");
    // `restartable` checks that the tasks can be started again (a plain future cannot),
    // reporting on the user's tasks, not on this code. When the check fails, the task's type
    // becomes an error type, so `#task()` adds no second error.
    let checked = spanned_as_tasks(block, &task);
    let attempted = finish.apply(quote!(#limits.apply(#task()).await));
    quote! {
        |#task, #limits| {
            #[allow(unused_mut)]
            let mut #task = #krate::__private::restartable(#checked);
            async move {
                let #result = #attempted;
                (::core::option::Option::Some(#task), #result)
            }
        }
    }
}

// Input: a task of a non-retrying pool: a plain future or a closure.
// Output: its one attempt. `Task::start` tells the two apart by a marker type inferred here.
// In place, the attempt is `__private::once`, a future that holds the task's future once;
// spawned, an `async` block, so that the task is started on the worker that runs it.
fn attempt_once(krate: &Path, block: &Block, finish: &Finish) -> TokenStream {
    let task = local("task");
    let limits = local("limits");
    // Reported on the user's tasks when they are neither futures nor closures.
    let task_there = spanned_as_tasks(block, &task);
    if !finish.spawn {
        return quote! {
            |#task, #limits| #krate::__private::once(
                #task,
                #limits,
                |#task| #krate::__private::Task::start(#task_there),
            )
        };
    }
    let result = finish.apply(quote! {
        #limits.apply(#krate::__private::Task::start(#task_there)).await
    });
    quote! {
        |#task, #limits| async move {
            (::core::option::Option::None, #result)
        }
    }
}

/// `task` as an expression spanning the body's tasks (its tail expression, or the block):
/// `(task,).0`, whose parenthesis is spanned on the tasks' first token and whose `.0` on
/// their last, so that rustc reports an error about `task` under the whole expression.
fn spanned_as_tasks(block: &Block, task: &syn::Ident) -> TokenStream {
    let (first, last) = tasks_range(block);
    let task = quote_spanned!(first=> (#task,));
    quote_spanned!(last=> #task.0)
}

/// The spans of the first and the last token of the body's tasks (its tail expression, or
/// the block).
fn tasks_range(block: &Block) -> (Span, Span) {
    let tasks = match block.stmts.last() {
        Some(Stmt::Expr(tail, None)) => tail.to_token_stream(),
        _ => block.to_token_stream(),
    };
    let mut tokens = tasks.into_iter();
    let first = tokens
        .next()
        .map_or_else(|| block.span(), |token| token.span());
    let last = tokens.last().map_or(first, |token: TokenTree| token.span());
    (first, last)
}

/// An expression (a call, a closure) moved to span `first..last`: its top-level tokens are
/// located at `first`, but the last one (the call's parentheses, the closure's body) at
/// `last`, so that rustc reports errors about the whole expression under that range. Only
/// locations change: names resolve as before.
fn located(expression: TokenStream, first: Span, last: Span) -> TokenStream {
    let mut tokens: Vec<TokenTree> = expression.into_iter().collect();
    let count = tokens.len();
    for (index, token) in tokens.iter_mut().enumerate() {
        let at = if index + 1 == count { last } else { first };
        match token {
            // Generated locals keep their hygiene.
            TokenTree::Ident(ident) if ident.to_string().starts_with(LOCAL_PREFIX) => {
                ident.set_span(ident.span().located_at(at));
            }
            // The rest (absolute paths, punctuation) is the user's, as their own code: an
            // expression spanning tokens of two contexts would be reported twice.
            _ => token.set_span(at),
        }
    }
    tokens.into_iter().collect()
}

/// `::core::time::Duration::from_millis(250)`: the coarsest exact constructor.
fn duration(nanos: Nanos) -> TokenStream {
    let (constructor, value) = nanos.constructor();
    let constructor = syn::Ident::new(constructor, Span::call_site());
    quote!(::core::time::Duration::#constructor(#value))
}

fn mentions_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// A generated local: invisible to the user's code, and theirs to it.
fn local(name: &str) -> syn::Ident {
    format_ident!("{}{}", LOCAL_PREFIX, name, span = Span::mixed_site())
}

const LOCAL_PREFIX: &str = "__retry_pool_";

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        pooled(args, item).to_string()
    }

    #[test]
    fn rewrites_the_signature_and_wraps_the_body() {
        let out = expand_str(
            quote!(concurrency = 8, retry = "lifo", attempts = 4),
            quote! {
                /// Docs.
                pub async fn fetch_all(client: &Client, urls: Vec<String>) -> Result<Page, FetchError> {
                    urls.into_iter().map(move |url| async move || client.get(&url).await)
                }
            },
        );
        assert!(!out.contains("async fn"), "{out}");
        assert!(out.contains("pub fn fetch_all"), "{out}");
        assert!(out.contains("# [doc = r\" Docs.\"]"), "{out}");
        assert!(
            out.contains(
                "impl :: retry_pool :: PoolStream < Item = :: retry_pool :: __private :: Outcome < Result < Page , FetchError > > >"
            ),
            "{out}"
        );
        assert!(
            out.contains(". retry (:: retry_pool :: Retry :: Lifo) . attempts (4u32)"),
            "{out}"
        );
        assert!(
            out.contains(":: retry_pool :: __private :: restartable"),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");
        if std::env::var_os("RETRY_POOL_SHOW_EXPANSION").is_some() {
            println!("{out}");
        }
    }

    /// The defaults are the runtime's: a key left out is left out of the expansion.
    #[test]
    fn only_the_keys_written_are_emitted() {
        let function = quote!(
            async fn f(n: usize) -> Result<usize, ()> {
                (0..n).map(|i| async move || Ok(i))
            }
        );
        let out = expand_str(quote!(concurrency = 8, retry = "lifo"), function.clone());
        assert!(
            out.contains(". retry (:: retry_pool :: Retry :: Lifo)"),
            "{out}"
        );
        assert!(!out.contains(". attempts"), "{out}");
        let out = expand_str(quote!(concurrency = 8), function);
        assert!(
            !out.contains(". retry") && !out.contains(". attempts"),
            "{out}"
        );
    }

    #[test]
    fn without_retry_tasks_start_once() {
        let out = expand_str(
            quote!(concurrency = n),
            quote!(
                async fn f(n: usize) -> std::io::Result<()> {
                    [async { Ok(()) }]
                }
            ),
        );
        assert!(
            out.contains(":: retry_pool :: __private :: concurrency (n)"),
            "{out}"
        );
        assert!(
            out.contains(":: retry_pool :: __private :: Task :: start"),
            "{out}"
        );
        assert!(!out.contains(". retry ("), "{out}");
    }

    #[test]
    fn time_keys_configure_the_pool() {
        let out = expand_str(
            quote!(
                concurrency = 4,
                retry = "fifo",
                backoff = "50ms..1.5s",
                timeout = "250us"
            ),
            quote!(
                async fn f(urls: Vec<String>) -> Result<usize, ()> {
                    urls.into_iter().map(|url| async move || Ok(url.len()))
                }
            ),
        );
        assert!(
            out.contains(
                ". backoff (:: retry_pool :: Backoff :: exponential (:: core :: time :: Duration :: from_millis (50u64) , :: core :: time :: Duration :: from_millis (1500u64)))"
            ),
            "{out}"
        );
        assert!(
            out.contains(". timeout (:: core :: time :: Duration :: from_micros (250u64))"),
            "{out}"
        );
        assert!(
            out.contains(":: retry_pool :: __private :: pooled ("),
            "{out}"
        );
        let out = expand_str(
            quote!(concurrency = 4, retry = "lifo", backoff = "2s"),
            quote!(
                async fn f(urls: Vec<String>) -> Result<usize, ()> {
                    urls.into_iter().map(|url| async move || Ok(url.len()))
                }
            ),
        );
        assert!(
            out.contains(
                ". backoff (:: retry_pool :: Backoff :: fixed (:: core :: time :: Duration :: from_secs (2u64)))"
            ),
            "{out}"
        );
        assert!(!out.contains(". timeout"), "{out}");
    }

    #[test]
    fn spawn_checks_then_spawns() {
        let out = expand_str(
            quote!(concurrency = 4, spawn = true),
            quote!(
                async fn f(urls: Vec<String>) -> Result<usize, ()> {
                    urls.into_iter().map(|url| async move { Ok(url.len()) })
                }
            ),
        );
        for expected in [
            ":: retry_pool :: __private :: spawnable (",
            ":: retry_pool :: __private :: static_tasks (",
            ":: retry_pool :: __private :: spawn_pooled (",
            ":: retry_pool :: __private :: into_result (",
        ] {
            assert!(out.contains(expected), "{expected}: {out}");
        }
        assert!(!out.contains("__private :: pooled ("), "{out}");
        if std::env::var_os("RETRY_POOL_SHOW_EXPANSION").is_some() {
            println!("{out}");
        }
    }

    #[test]
    fn on_error_the_fallback_and_the_error() {
        let out = expand_str(
            quote!(concurrency = 8, crate = "my_reexport", retry = "lifoo"),
            quote!(
                async fn f() -> Result<(), ()> {
                    []
                }
            ),
        );
        assert!(
            out.contains("fn f () -> impl my_reexport :: PoolStream"),
            "{out}"
        );
        assert!(
            out.contains("my_reexport :: __private :: fallback ()"),
            "{out}"
        );
        assert!(out.contains("compile_error"), "{out}");
    }
}
