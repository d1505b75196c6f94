//! The item under the attribute: it must be an `async fn` with a body and a declared
//! return type.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned as _;
use syn::{Item, ItemFn, ReturnType};

use crate::errors::Errors;

/// What the attribute was put on.
pub(crate) enum Target {
    /// A function: rewritten, even when it has mistakes (reported in the errors), so that
    /// its callers see a function returning the stream.
    Function(Box<ItemFn>),
    /// Anything else, given back as it is.
    Other(TokenStream),
}

pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> Target {
    let function = match syn::parse2::<ItemFn>(tokens.clone()) {
        Ok(function) => function,
        Err(_) => {
            errors.push(not_a_function(&tokens));
            return Target::Other(tokens);
        }
    };
    let signature = &function.sig;
    if signature.asyncness.is_none() {
        errors.push(syn::Error::new(
            signature.fn_token.span,
            "`#[pooled]` needs an `async fn`: its body lists the tasks, and may `.await` first; write `async fn`",
        ));
    }
    if let ReturnType::Default = signature.output {
        errors.push(syn::Error::new(
            signature.paren_token.span.close(),
            "`#[pooled]` needs the `Result` that one attempt returns, such as `-> Result<Page, Error>`",
        ));
    }
    Target::Function(Box::new(function))
}

fn not_a_function(tokens: &TokenStream) -> syn::Error {
    const MESSAGE: &str = "`#[pooled]` goes on an `async fn` whose body lists the tasks";
    let keyword = match syn::parse2::<Item>(tokens.clone()) {
        Ok(Item::Struct(item)) => item.struct_token.span,
        Ok(Item::Enum(item)) => item.enum_token.span,
        Ok(Item::Union(item)) => item.union_token.span,
        Ok(Item::Trait(item)) => item.trait_token.span,
        Ok(Item::Impl(item)) => item.impl_token.span,
        Ok(Item::Mod(item)) => item.mod_token.span,
        Ok(Item::Const(item)) => item.const_token.span,
        Ok(Item::Static(item)) => item.static_token.span,
        Ok(Item::Type(item)) => item.type_token.span,
        Ok(Item::Use(item)) => item.use_token.span,
        Ok(Item::Verbatim(tokens)) => {
            // A function without a body, as in a trait: `fn f(&self);`.
            return syn::Error::new_spanned(
                tokens,
                "`#[pooled]` needs a function with a body: the body lists the tasks",
            );
        }
        Ok(other) => other.span(),
        Err(_) => return syn::Error::new_spanned(tokens.to_token_stream(), MESSAGE),
    };
    syn::Error::new(keyword, MESSAGE)
}
