//! Amazon Bedrock's ConverseStream (binary AWS event-stream): its stream dialect
//! ([`Bedrock`]) and, with the `provider` feature, the translation of an OpenAI chat request
//! into a Converse request and its SigV4 signature ([`AwsCredentials`], through `aws-sigv4`).

mod dialect;
#[cfg(feature = "provider")]
pub(crate) mod request;
#[cfg(feature = "provider")]
mod sign;

pub use self::dialect::Bedrock;
#[cfg(feature = "provider")]
pub use self::sign::AwsCredentials;
