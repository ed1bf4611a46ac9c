//! The sdk's enums as the database stores them: text columns whose values the
//! migrations' CHECK constraints name. Rows carry these types, never strings, so a status is
//! written and compared as the enum everywhere, and an unknown value read back is an error, not a
//! guess.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use suanli_sdk::{ContractStatus, DataClass, OrderStatus, Side, TimeInForce, WithdrawalStatus};

/// A stored enum: its snake_case name in a `text` column.
macro_rules! stored {
    ($(#[$doc:meta])* $stored:ident($enum:ty)) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub struct $stored(pub $enum);

        impl ToSql<Text, Pg> for $stored {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.0.as_str(), &mut out.reborrow())
            }
        }

        impl FromSql<Text, Pg> for $stored {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let name = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                <$enum>::parse(&name)
                    .map($stored)
                    .ok_or_else(|| format!("unknown {} {name:?}", stringify!($enum)).into())
            }
        }

        impl From<$enum> for $stored {
            fn from(value: $enum) -> Self {
                $stored(value)
            }
        }
    };
}

stored!(
    /// An offer's or bid's status.
    StoredOrderStatus(OrderStatus)
);
stored!(
    /// A contract's status.
    StoredContractStatus(ContractStatus)
);
stored!(
    /// A withdrawal's status.
    StoredWithdrawalStatus(WithdrawalStatus)
);
stored!(
    /// How long a bid may rest.
    StoredTimeInForce(TimeInForce)
);
stored!(
    /// How sensitive the data behind a bid is.
    StoredDataClass(DataClass)
);
stored!(
    /// Which side of a contract rested first (its maker).
    StoredSide(Side)
);

/// The statuses of resting orders as an SQL list (`'open', 'partially_filled'`), for queries
/// that filter on them literally, so that PostgreSQL can use its partial indexes on resting
/// orders in every plan.
pub fn resting_sql() -> String {
    RESTING
        .iter()
        .map(|status| format!("'{}'", status.0.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statuses of orders that rest in the book.
pub const RESTING: [StoredOrderStatus; 2] = [
    StoredOrderStatus(OrderStatus::Open),
    StoredOrderStatus(OrderStatus::PartiallyFilled),
];
