//! What requests cost in DynamoDB calls and capacity.

mod offset_cost;
