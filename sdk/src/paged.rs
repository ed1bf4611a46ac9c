//! Paged lists read lazily: the next page is fetched only when the items in hand run out.

use std::future::Future;
use std::pin::Pin;

use crate::error::Error;
use crate::types::Page;

type PageFuture<'c, T> = Pin<Box<dyn Future<Output = Result<Page<T>, Error>> + Send + 'c>>;

/// The items of a paged list, in the server's order, fetched page by page as they are read.
///
/// ```no_run
/// # async fn show(client: &suanli_sdk::Client) -> Result<(), suanli_sdk::Error> {
/// let mut contracts = client.contracts_paged(None, None, 100);
/// while let Some(contract) = contracts.next().await {
///     println!("{}", contract?.id);
/// }
/// # Ok(())
/// # }
/// ```
pub struct Paged<'c, T> {
    fetch: Box<dyn FnMut(Option<String>) -> PageFuture<'c, T> + Send + 'c>,
    items: std::vec::IntoIter<T>,
    cursor: Option<String>,
    done: bool,
}

impl<'c, T> Paged<'c, T> {
    /// A list whose page after a cursor (`None`: the first) `fetch` returns.
    pub(crate) fn new<F, Fut>(mut fetch: F) -> Self
    where
        F: FnMut(Option<String>) -> Fut + Send + 'c,
        Fut: Future<Output = Result<Page<T>, Error>> + Send + 'c,
    {
        Paged {
            fetch: Box::new(move |cursor| Box::pin(fetch(cursor))),
            items: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }

    /// The next item, fetching the next page when needed; `None` after the last item, or after
    /// an error (which ends the list).
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        loop {
            if let Some(item) = self.items.next() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            match (self.fetch)(self.cursor.take()).await {
                Ok(page) => {
                    self.done = page.next_cursor.is_none();
                    self.cursor = page.next_cursor;
                    self.items = page.items.into_iter();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error));
                }
            }
        }
    }

    /// Every remaining item (all pages).
    pub async fn collect(mut self) -> Result<Vec<T>, Error> {
        let mut all = Vec::new();
        while let Some(item) = self.next().await {
            all.push(item?);
        }
        Ok(all)
    }
}
