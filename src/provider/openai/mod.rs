//! OpenAI's API and every OpenAI-compatible server (Azure, Groq, Mistral, DeepSeek,
//! OpenRouter, vLLM, llama.cpp, Ollama's `/v1`): the chat, completions and audio stream
//! dialect ([`OpenAiCompatible`]) and the Responses API's ([`OpenAiResponses`]).

#[cfg(feature = "provider")]
pub(crate) mod client;
mod dialect;
#[cfg(feature = "provider")]
pub(crate) mod request;
mod responses;

pub use self::dialect::OpenAiCompatible;
pub use self::responses::OpenAiResponses;
