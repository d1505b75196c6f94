//! The rewritten signature: no longer `async`, returning the stream. Shared by the
//! expansion and its fallback.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned as _;
use syn::{ItemFn, Path, ReturnType, Type};

/// The signature, no longer `async`, returning the stream of the declared `Result`.
///
/// `Outcome<R>` is spanned on the declared return type, so that a return type that is not a
/// `Result` is reported there.
pub(crate) fn rewrite_signature(krate: &Path, function: &mut ItemFn) {
    let signature = &mut function.sig;
    signature.asyncness = None;
    let (arrow, declared): (_, Type) = match &signature.output {
        ReturnType::Type(arrow, declared) => (*arrow, (**declared).clone()),
        // Reported by `item::parse`; any `Result` keeps the callers free of more errors.
        ReturnType::Default => (
            Default::default(),
            syn::parse_quote!(::core::result::Result<(), ::core::convert::Infallible>),
        ),
    };
    let span = declared.span();
    let krate = respan(krate.to_token_stream(), span);
    let stream: Type = syn::parse_quote_spanned! {span=>
        impl #krate::PoolStream<Item = #krate::__private::Outcome<#declared>>
    };
    signature.output = ReturnType::Type(arrow, Box::new(stream));
}

/// `tokens`, each spanned at `span` (which keeps the hygiene of `span`).
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
