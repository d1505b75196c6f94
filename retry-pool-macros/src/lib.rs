//! Placeholder until the attribute lands.
use proc_macro::TokenStream;

/// Placeholder.
#[proc_macro_attribute]
pub fn pooled(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
