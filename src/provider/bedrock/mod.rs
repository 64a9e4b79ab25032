//! Amazon Bedrock's ConverseStream (binary AWS event-stream): its stream dialect
//! ([`Bedrock`]).

mod dialect;

pub use self::dialect::Bedrock;
