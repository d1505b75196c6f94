//! What is emitted beside the errors when the attribute or the function has a mistake:
//! the rewritten signature, with a body that type-checks whatever the user's body is.
//!
//! Callers then see a function returning the stream, as it will once the mistake is fixed,
//! and get no errors of their own. The user's body is left out: without the expansion
//! around it, nothing would tell its tasks' types (`Ok(..)` takes its error type from the
//! declared `Result`), and it would add errors of its own.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Block, ItemFn, Path, Stmt};

use crate::signature::rewrite_signature;

// Input: `async fn f(args) -> R { body }` with a mistake.
// Output: `fn f(args) -> impl PoolStream<Item = Outcome<R>> { <empty stream> }`.
pub(crate) fn function(krate: &Path, mut function: ItemFn) -> TokenStream {
    rewrite_signature(krate, &mut function);
    // The arguments are not used without the body.
    function
        .attrs
        .push(syn::parse_quote!(#[allow(unused_variables, unused_mut)]));
    let fallback = quote!(#krate::__private::fallback());
    function.block = Box::new(Block {
        brace_token: function.block.brace_token,
        stmts: vec![Stmt::Expr(syn::Expr::Verbatim(fallback), None)],
    });
    function.into_token_stream()
}
