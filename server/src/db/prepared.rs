//! Hand-written statements that stay prepared. `diesel::sql_query` never lets a connection keep
//! its statement prepared (its text could be anything), so PostgreSQL parses and plans it on every
//! call; the writer's batch statements have texts that never change (`unnest` over arrays, however
//! many rows), so [`prepared`] marks them safe to keep: the connection's statement cache keys them
//! by their text and the types of their parameters, and PostgreSQL plans each once per session.
//!
//! Same use as `sql_query`: `prepared("… $1 … $2 …").bind::<Type, _>(value)…`; `$n` is the n-th
//! bind, in any order in the text and as often as it is needed.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement whose text never changes, with its parameters.
#[must_use = "a statement does nothing until it is executed or loaded"]
pub struct Prepared<'a> {
    /// The text between parameters, and which parameter (0-based) follows each piece.
    pieces: Vec<(String, Option<usize>)>,
    binds: Vec<Box<dyn QueryFragment<Pg> + 'a>>,
}

/// A statement to be kept prepared: `sql` numbers its parameters `$1`, `$2`, …
pub fn prepared<'a>(sql: &str) -> Prepared<'a> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        let digits: String = if c == '$' {
            std::iter::from_fn(|| chars.next_if(|(_, d)| d.is_ascii_digit()).map(|(_, d)| d))
                .collect()
        } else {
            String::new()
        };
        match digits.parse::<usize>() {
            Ok(number) if number >= 1 => {
                pieces.push((std::mem::take(&mut piece), Some(number - 1)));
            }
            _ => {
                piece.push(c);
                piece.push_str(&digits);
            }
        }
    }
    pieces.push((piece, None));
    Prepared {
        pieces,
        binds: Vec::new(),
    }
}

/// One parameter's value and its SQL type.
struct Bind<ST, T> {
    value: T,
    sql_type: std::marker::PhantomData<ST>,
}

impl<ST, T> QueryFragment<Pg> for Bind<ST, T>
where
    Pg: HasSqlType<ST>,
    T: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)
    }
}

impl<'a> Prepared<'a> {
    /// Adds the next parameter.
    pub fn bind<ST, T>(mut self, value: T) -> Self
    where
        Pg: HasSqlType<ST>,
        T: ToSql<ST, Pg> + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Bind {
            value,
            sql_type: std::marker::PhantomData::<ST>,
        }));
        self
    }
}

/// Several statements sent as one (one round trip): every statement but the last becomes a
/// common table expression of the last, `WITH s0 AS (…), s1 AS (…) <last>`; their parameters are
/// renumbered after one another. The last may have a `WITH` list of its own, which joins the
/// list (its names must differ from `s0`, `s1`, …); the others may not. PostgreSQL runs them all
/// on one snapshot, so none may read what another writes (the foreign-key and statement-level
/// checks of every part still run, at the end of the whole statement, and see all of it), and no
/// two may change the same row. What the statement answers is what the last answers. `None` for
/// no statements.
pub fn all_of(statements: Vec<Prepared<'_>>) -> Option<Prepared<'_>> {
    let count = statements.len();
    let mut statements = statements.into_iter();
    if count <= 1 {
        return statements.next();
    }
    let mut combined = Prepared {
        pieces: Vec::new(),
        binds: Vec::new(),
    };
    for (index, mut statement) in statements.enumerate() {
        let last = index + 1 == count;
        let own_list = last
            && statement
                .pieces
                .first()
                .is_some_and(|(text, _)| text.starts_with("WITH "));
        let opening = match index {
            0 => "WITH s0 AS (".to_owned(),
            _ if own_list => {
                statement.pieces[0].0.replace_range(.."WITH ".len(), "");
                "), ".to_owned()
            }
            _ if last => ") ".to_owned(),
            _ => format!("), s{index} AS ("),
        };
        combined.pieces.push((opening, None));
        let offset = combined.binds.len();
        combined.pieces.extend(
            statement
                .pieces
                .into_iter()
                .map(|(text, parameter)| (text, parameter.map(|number| number + offset))),
        );
        combined.binds.extend(statement.binds);
    }
    Some(combined)
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for (piece, parameter) in &self.pieces {
            out.push_sql(piece);
            if let Some(index) = parameter {
                let bind = self.binds.get(*index).ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError(
                        format!("parameter ${} has no value", index + 1).into(),
                    )
                })?;
                bind.walk_ast(out.reborrow())?;
            }
        }
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Cached by its text and parameter types, not by a Rust type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::{all_of, prepared};

    /// The text with each parameter written as `$n` (1-based), as PostgreSQL will number them.
    fn text_of(statement: &super::Prepared<'_>) -> String {
        statement
            .pieces
            .iter()
            .map(|(piece, parameter)| match parameter {
                Some(index) => format!("{piece}${}", index + 1),
                None => piece.clone(),
            })
            .collect()
    }

    #[test]
    fn statements_sent_as_one_number_their_parameters_after_one_another() {
        let one = || {
            prepared("INSERT INTO a SELECT $2, $1")
                .bind::<diesel::sql_types::Int4, _>(1)
                .bind::<diesel::sql_types::Int4, _>(2)
        };
        let combined = all_of(vec![
            one(),
            prepared("INSERT INTO b VALUES ($1)").bind::<diesel::sql_types::Int4, _>(3),
            prepared("UPDATE c SET x = $1, y = $1").bind::<diesel::sql_types::Int4, _>(4),
        ])
        .expect("three statements");
        assert_eq!(
            text_of(&combined),
            "WITH s0 AS (INSERT INTO a SELECT $2, $1), s1 AS (INSERT INTO b VALUES ($3)) UPDATE c SET x = $4, y = $4"
        );
        assert_eq!(combined.binds.len(), 4);
        let with_own_list = all_of(vec![
            one(),
            prepared("WITH x AS (SELECT $1 AS v) INSERT INTO d SELECT v FROM x RETURNING $2")
                .bind::<diesel::sql_types::Int4, _>(5)
                .bind::<diesel::sql_types::Int4, _>(6),
        ])
        .expect("two statements");
        assert_eq!(
            text_of(&with_own_list),
            "WITH s0 AS (INSERT INTO a SELECT $2, $1), x AS (SELECT $3 AS v) INSERT INTO d SELECT v FROM x RETURNING $4"
        );
        assert_eq!(
            text_of(&all_of(vec![one()]).expect("one")),
            "INSERT INTO a SELECT $2, $1"
        );
        assert!(all_of(Vec::new()).is_none());
    }

    #[test]
    fn parameters_are_found_in_any_order_and_dollars_elsewhere_are_kept() {
        let statement = prepared("SELECT $2, $1, '$' || x, $10 FROM t WHERE a = $1");
        let parameters: Vec<Option<usize>> = statement
            .pieces
            .iter()
            .map(|(_, parameter)| *parameter)
            .collect();
        assert_eq!(parameters, [Some(1), Some(0), Some(9), Some(0), None]);
        let text: Vec<&str> = statement
            .pieces
            .iter()
            .map(|(piece, _)| piece.as_str())
            .collect();
        assert_eq!(
            text,
            ["SELECT ", ", ", ", '$' || x, ", " FROM t WHERE a = ", ""]
        );
    }
}
