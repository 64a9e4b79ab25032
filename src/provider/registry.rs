//! Providers, their configuration from the environment, and `provider/model` routing.

use super::bedrock::AwsCredentials;
use super::{ProviderKind, RequestError};
use std::fmt;

/// A provider API key. Its `Debug` shows only that a key is set; there is no `Display`: the
/// value leaves only through [`ApiKey::expose`], into the upstream request's auth header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the auth header.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A configuration mistake (a base URL that is not an `http(s)://` URL, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One upstream provider: a name (the `provider` of `provider/model`), the API it speaks, its
/// base URL and, usually, a key.
///
/// ```
/// use tower_llm_stream::provider::{Provider, ProviderKind};
///
/// let local = Provider::new("vllm", ProviderKind::OpenAiCompatible, "http://127.0.0.1:8000").unwrap();
/// assert_eq!(local.base_url(), "http://127.0.0.1:8000/v1"); // `/v1` when no path is given
/// let openai = Provider::new("openai", ProviderKind::OpenAiCompatible, "https://api.openai.com/v1")
///     .unwrap()
///     .api_key("sk-secret");
/// assert!(!format!("{openai:?}").contains("sk-secret"));
/// assert!(Provider::new("x", ProviderKind::OpenAiCompatible, "ftp://example.com").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Provider {
    name: String,
    kind: ProviderKind,
    base_url: String,
    api_key: Option<ApiKey>,
    aws: Option<AwsCredentials>,
    models: Vec<String>,
    include_usage: bool,
}

impl Provider {
    /// A provider named `name` speaking `kind` at `base_url`. The base URL is where the API's
    /// paths start (`https://api.openai.com/v1`); for OpenAI-compatible servers a URL without
    /// a path gets `/v1`, as the OpenAI SDKs expect. Names are lowercase ASCII letters,
    /// digits, `-` and `_`.
    pub fn new(
        name: impl Into<String>,
        kind: ProviderKind,
        base_url: &str,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(ConfigError(format!(
                "provider name {name:?}: use lowercase letters, digits, '-' and '_'"
            )));
        }
        let uri: http::Uri = base_url
            .parse()
            .map_err(|e| ConfigError(format!("{name}: base URL {base_url:?}: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(ConfigError(format!(
                "{name}: base URL {base_url:?} must be an http:// or https:// URL"
            )));
        }
        if uri.query().is_some() {
            return Err(ConfigError(format!(
                "{name}: base URL {base_url:?} must not have a query"
            )));
        }
        let mut base_url = base_url.trim_end_matches('/').to_owned();
        if kind == ProviderKind::OpenAiCompatible && matches!(uri.path(), "" | "/") {
            base_url.push_str("/v1");
        }
        Ok(Provider {
            name,
            kind,
            base_url,
            api_key: None,
            aws: None,
            models: Vec::new(),
            include_usage: true,
        })
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.api_key = (!key.is_empty()).then(|| ApiKey::new(key));
        self
    }

    /// Sets the AWS credentials and region a Bedrock provider signs its requests with (SigV4).
    ///
    /// ```
    /// use tower_llm_stream::provider::bedrock::AwsCredentials;
    /// use tower_llm_stream::provider::{Endpoint, Provider, ProviderKind, Providers};
    ///
    /// let credentials = AwsCredentials::new("AKIDEXAMPLE", "secret", None, "us-east-1");
    /// let bedrock = Provider::new("bedrock", ProviderKind::Bedrock, "https://bedrock-runtime.us-east-1.amazonaws.com")
    ///     .unwrap()
    ///     .aws_credentials(credentials);
    /// let providers = Providers::new().with(bedrock);
    /// let route = providers.route("bedrock/anthropic.claude-3-5-haiku-20241022-v1:0").unwrap();
    /// let body = serde_json::json!({"messages": [{"role": "user", "content": "Hi"}], "stream": true});
    /// let upstream = route.prepare(Endpoint::ChatCompletions, body).unwrap();
    /// assert_eq!(
    ///     upstream.request.uri(),
    ///     "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic%2Eclaude%2D3%2D5%2Dhaiku%2D20241022%2Dv1%3A0/converse-stream"
    /// );
    /// let auth = upstream.request.headers()["authorization"].to_str().unwrap();
    /// assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    /// assert!(auth.contains("/us-east-1/bedrock/aws4_request"));
    /// assert!(upstream.request.headers()["authorization"].is_sensitive());
    /// ```
    #[must_use]
    pub fn aws_credentials(mut self, credentials: AwsCredentials) -> Self {
        self.aws = Some(credentials);
        self
    }

    /// The AWS credentials, for a Bedrock provider.
    #[must_use]
    pub fn aws(&self) -> Option<&AwsCredentials> {
        self.aws.as_ref()
    }

    /// The models this provider offers. When the list is not empty, a request for another
    /// model is refused with `400 unknown_model`; when it is empty, any model name goes
    /// upstream and the provider judges it.
    pub fn models<I: IntoIterator<Item = S>, S: Into<String>>(mut self, models: I) -> Self {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// [`models`](Self::models) from a comma-separated list, as `P_MODELS` gives it (spaces
    /// and empty entries ignored).
    ///
    /// ```
    /// use tower_llm_stream::provider::{Provider, ProviderKind};
    ///
    /// let p = Provider::new("vllm", ProviderKind::OpenAiCompatible, "http://127.0.0.1:8000")
    ///     .unwrap()
    ///     .models_from_list(" llama-3, qwen ,,");
    /// assert_eq!(p.model_list(), ["llama-3", "qwen"]);
    /// ```
    #[must_use]
    pub fn models_from_list(self, comma_separated: &str) -> Self {
        self.models(
            comma_separated
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        )
    }

    /// Whether streamed chat and completion requests get `stream_options.include_usage`
    /// (OpenAI-compatible providers only; on by default, off for servers that reject the
    /// field).
    #[must_use]
    pub fn include_usage(mut self, on: bool) -> Self {
        self.include_usage = on;
        self
    }

    /// The provider's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API it speaks.
    #[must_use]
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// Its base URL, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Its key, if one is set.
    #[must_use]
    pub fn key(&self) -> Option<&ApiKey> {
        self.api_key.as_ref()
    }

    /// Every secret this provider was configured with (its API key, its AWS secret key and
    /// session token), for redaction ([`Secrets`](crate::redact::Secrets)).
    ///
    /// ```
    /// use tower_llm_stream::provider::{Provider, ProviderKind};
    ///
    /// let openai = Provider::new("openai", ProviderKind::OpenAiCompatible, "https://api.openai.com/v1")
    ///     .unwrap()
    ///     .api_key("sk-test-0123456789");
    /// assert_eq!(openai.secrets(), ["sk-test-0123456789"]);
    /// ```
    #[must_use]
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets: Vec<&str> = self.api_key.iter().map(ApiKey::expose).collect();
        if let Some(aws) = &self.aws {
            secrets.extend(aws.secrets());
        }
        secrets
    }

    /// The models it was configured with (may be empty: see [`Provider::models`]).
    #[must_use]
    pub fn model_list(&self) -> &[String] {
        &self.models
    }

    pub(crate) fn adds_include_usage(&self) -> bool {
        self.include_usage
    }
}

/// The providers `Providers::from_env` knows: name, environment prefix, API, default base URL,
/// whether `stream_options.include_usage` is accepted.
const KNOWN: &[(&str, &str, ProviderKind, &str, bool)] = &[
    (
        "openai",
        "OPENAI",
        ProviderKind::OpenAiCompatible,
        "https://api.openai.com/v1",
        true,
    ),
    (
        "anthropic",
        "ANTHROPIC",
        ProviderKind::Anthropic,
        "https://api.anthropic.com/v1",
        true,
    ),
    (
        "gemini",
        "GEMINI",
        ProviderKind::Gemini,
        "https://generativelanguage.googleapis.com/v1beta",
        true,
    ),
    (
        "cohere",
        "COHERE",
        ProviderKind::Cohere,
        "https://api.cohere.com/v2",
        true,
    ),
    (
        "mistral",
        "MISTRAL",
        ProviderKind::OpenAiCompatible,
        "https://api.mistral.ai/v1",
        false,
    ),
    (
        "groq",
        "GROQ",
        ProviderKind::OpenAiCompatible,
        "https://api.groq.com/openai/v1",
        true,
    ),
    (
        "deepseek",
        "DEEPSEEK",
        ProviderKind::OpenAiCompatible,
        "https://api.deepseek.com/v1",
        true,
    ),
    (
        "openrouter",
        "OPENROUTER",
        ProviderKind::OpenAiCompatible,
        "https://openrouter.ai/api/v1",
        true,
    ),
    (
        "ollama",
        "OLLAMA",
        ProviderKind::Ollama,
        "http://127.0.0.1:11434",
        true,
    ),
];

/// The Bedrock provider the variables describe, if any (see [`Providers::from_vars`]).
fn bedrock_from_vars(
    vars: &std::collections::HashMap<String, String>,
) -> Result<Option<Provider>, ConfigError> {
    let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned());
    let region = get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION"));
    let (access, secret) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"));
    let (url, models) = (get("BEDROCK_BASE_URL"), get("BEDROCK_MODELS"));
    let asked = url.is_some() || models.is_some();
    let (Some(region), Some(access), Some(secret)) = (region, access, secret) else {
        if asked {
            return Err(ConfigError(
                "bedrock: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (or unset BEDROCK_BASE_URL and BEDROCK_MODELS)".to_owned(),
            ));
        }
        return Ok(None);
    };
    let base = url.unwrap_or_else(|| format!("https://bedrock-runtime.{region}.amazonaws.com"));
    let credentials = AwsCredentials::new(access, secret, get("AWS_SESSION_TOKEN"), region);
    let mut provider =
        Provider::new("bedrock", ProviderKind::Bedrock, &base)?.aws_credentials(credentials);
    if let Some(models) = models {
        provider = provider.models_from_list(&models);
    }
    Ok(Some(provider))
}

/// The enabled providers, by name.
///
/// ```
/// use tower_llm_stream::provider::Providers;
///
/// let providers = Providers::from_vars([
///     ("ANTHROPIC_API_KEY".to_owned(), "sk-ant-1".to_owned()),
///     ("OLLAMA_BASE_URL".to_owned(), "http://127.0.0.1:11434".to_owned()),
///     ("OPENAI_MODELS".to_owned(), "gpt-4o-mini, gpt-4.1".to_owned()), // no key, no URL: not enabled
/// ])
/// .unwrap();
/// let names: Vec<&str> = providers.iter().map(|p| p.name()).collect();
/// assert_eq!(names, ["anthropic", "ollama"]);
///
/// let route = providers.route("anthropic/claude-haiku-4-5").unwrap();
/// assert_eq!((route.provider.name(), route.model), ("anthropic", "claude-haiku-4-5"));
/// let error = providers.route("openai/gpt-4o").unwrap_err();
/// assert_eq!(error.code, "unknown_provider");
/// assert!(error.message.contains("anthropic, ollama"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Providers {
    list: Vec<Provider>,
}

/// The longest model name routed (`provider/model`), in bytes.
const MAX_MODEL_LEN: usize = 256;

impl Providers {
    /// No providers.
    #[must_use]
    pub fn new() -> Self {
        Providers::default()
    }

    /// Adds a provider, replacing one of the same name.
    #[must_use]
    pub fn with(mut self, provider: Provider) -> Self {
        self.insert(provider);
        self
    }

    /// Adds a provider, replacing one of the same name.
    pub fn insert(&mut self, provider: Provider) {
        match self.list.iter_mut().find(|p| p.name == provider.name) {
            Some(slot) => *slot = provider,
            None => self.list.push(provider),
        }
    }

    /// The providers enabled in the process environment: see [`Providers::from_vars`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Providers::from_vars(std::env::vars())
    }

    /// The providers enabled by these variables. For each `P` in `OPENAI`, `ANTHROPIC`,
    /// `GEMINI`, `COHERE`, `MISTRAL`, `GROQ`, `DEEPSEEK`, `OPENROUTER`, `OLLAMA`: the provider is
    /// enabled when `P_API_KEY` or `P_BASE_URL` is set and not empty; `P_BASE_URL` replaces
    /// the public endpoint (a gateway, a local mock); `P_MODELS`, a comma-separated list,
    /// restricts the models it accepts and is what `/v1/models` lists.
    ///
    /// `bedrock` signs with AWS credentials instead of a key: it is enabled when
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_REGION` (or `AWS_DEFAULT_REGION`)
    /// are set (`AWS_SESSION_TOKEN` too for temporary credentials), or when `BEDROCK_BASE_URL`
    /// or `BEDROCK_MODELS` is set, which then requires them; its URL is
    /// `https://bedrock-runtime.REGION.amazonaws.com` unless `BEDROCK_BASE_URL` says otherwise.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let mut providers = Providers::new();
        for &(name, prefix, kind, default_url, include_usage) in KNOWN {
            let key = vars.get(&format!("{prefix}_API_KEY"));
            let url = vars.get(&format!("{prefix}_BASE_URL"));
            if key.is_none() && url.is_none() {
                continue;
            }
            let mut provider = Provider::new(name, kind, url.map_or(default_url, |u| u.trim()))?
                .include_usage(include_usage);
            if let Some(key) = key {
                provider = provider.api_key(key.trim());
            }
            if let Some(models) = vars.get(&format!("{prefix}_MODELS")) {
                provider = provider.models_from_list(models);
            }
            providers.insert(provider);
        }
        if let Some(bedrock) = bedrock_from_vars(&vars)? {
            providers.insert(bedrock);
        }
        Ok(providers)
    }

    /// The provider of this name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.name == name)
    }

    /// The providers, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.list.iter()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn names(&self) -> String {
        if self.list.is_empty() {
            return "none".to_owned();
        }
        self.list
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Routes `provider/model` (the model part may itself hold slashes, as OpenRouter's do).
    /// Errors are `400`s: `invalid_model` (no `provider/` prefix), `unknown_provider`,
    /// `unknown_model` (the provider has a model list without it).
    pub fn route<'a>(&'a self, model: &'a str) -> Result<Route<'a>, RequestError> {
        if model.len() > MAX_MODEL_LEN {
            return Err(RequestError::bad_request(
                "invalid_model",
                format!(
                    "model names are at most {MAX_MODEL_LEN} bytes; this one has {}",
                    model.len()
                ),
            ));
        }
        // The model becomes part of an upstream URL for some APIs (Gemini, Bedrock).
        if model
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(RequestError::bad_request(
                "invalid_model",
                format!("model {model:?} has a `.` or `..` segment: name a model, not a path"),
            ));
        }
        let Some((name, upstream_model)) = model.split_once('/') else {
            return Err(RequestError::bad_request(
                "invalid_model",
                format!(
                    "model {model:?} must be named provider/model (e.g. openai/gpt-4o-mini); enabled providers: {}",
                    self.names()
                ),
            ));
        };
        let Some(provider) = self.get(name) else {
            return Err(RequestError::bad_request(
                "unknown_provider",
                format!(
                    "unknown provider {name:?} in model {model:?}; enabled providers: {}",
                    self.names()
                ),
            ));
        };
        if upstream_model.is_empty() {
            return Err(RequestError::bad_request(
                "invalid_model",
                format!("model {model:?} names no model after {name:?}"),
            ));
        }
        if !provider.models.is_empty() && !provider.models.iter().any(|m| m == upstream_model) {
            return Err(RequestError::bad_request(
                "unknown_model",
                format!(
                    "unknown model {upstream_model:?} for provider {name:?}; its models: {}",
                    provider.models.join(", ")
                ),
            ));
        }
        Ok(Route {
            provider,
            model: upstream_model,
        })
    }
}

/// A routed request: the provider and the model name as the provider knows it (without the
/// `provider/` prefix).
#[derive(Debug, Clone, Copy)]
pub struct Route<'a> {
    /// The provider.
    pub provider: &'a Provider,
    /// The upstream model name.
    pub model: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn model_names_that_are_paths_or_too_long_are_refused() {
        let providers = Providers::from_vars(vars(&[("GEMINI_API_KEY", "k")])).unwrap();
        for model in ["gemini/..", "gemini/../x", "gemini/./m", "../gemini/m"] {
            let error = providers.route(model).unwrap_err();
            assert_eq!(error.code, "invalid_model", "{model}");
            assert!(
                error.message.contains("segment"),
                "{model}: {}",
                error.message
            );
        }
        let long = format!("gemini/{}", "m".repeat(250));
        let error = providers.route(&long).unwrap_err();
        assert!(
            error.message.contains("at most 256 bytes"),
            "{}",
            error.message
        );
        assert!(providers.route("gemini/gemini-2.5-pro").is_ok());
        assert!(
            providers.route("gemini/m.v1..2").is_ok(),
            "dots inside a name are fine"
        );
    }

    #[test]
    fn every_known_provider_is_enabled_by_its_key_or_url() {
        for &(name, prefix, kind, default_url, _) in KNOWN {
            let by_key =
                Providers::from_vars(vars(&[(&format!("{prefix}_API_KEY"), "k")])).unwrap();
            let provider = by_key.get(name).unwrap();
            assert_eq!(provider.kind(), kind);
            assert_eq!(provider.base_url(), default_url);
            assert_eq!(provider.key().unwrap().expose(), "k");
            let by_url = Providers::from_vars(vars(&[(
                &format!("{prefix}_BASE_URL"),
                "http://127.0.0.1:9/v9/",
            )]))
            .unwrap();
            let provider = by_url.get(name).unwrap();
            assert_eq!(provider.base_url(), "http://127.0.0.1:9/v9");
            assert!(provider.key().is_none());
        }
    }

    #[test]
    fn empty_values_enable_nothing_and_bad_urls_are_errors() {
        let none = Providers::from_vars(vars(&[("OPENAI_API_KEY", " "), ("GROQ_BASE_URL", "")]));
        assert!(none.unwrap().is_empty());
        let bad = Providers::from_vars(vars(&[("GROQ_BASE_URL", "localhost:8000")])).unwrap_err();
        assert!(bad.0.contains("groq"), "{bad}");
    }

    #[test]
    fn routing() {
        let providers = Providers::from_vars(vars(&[
            ("OPENROUTER_API_KEY", "k"),
            ("OPENAI_API_KEY", "k"),
            ("OPENAI_MODELS", "gpt-4o-mini,gpt-4.1"),
        ]))
        .unwrap();
        let route = providers
            .route("openrouter/anthropic/claude-3.5-sonnet")
            .unwrap();
        assert_eq!(route.provider.name(), "openrouter");
        assert_eq!(route.model, "anthropic/claude-3.5-sonnet");
        assert_eq!(providers.route("openai/gpt-4.1").unwrap().model, "gpt-4.1");
        let error = providers.route("openai/gpt-5").unwrap_err();
        assert_eq!(error.code, "unknown_model");
        assert!(error.message.contains("gpt-4o-mini, gpt-4.1"));
        assert_eq!(providers.route("gpt-4o").unwrap_err().code, "invalid_model");
        assert_eq!(
            providers.route("openai/").unwrap_err().code,
            "invalid_model"
        );
        assert_eq!(providers.route("x/y").unwrap_err().code, "unknown_provider");
        assert_eq!(
            Providers::new().route("x/y").unwrap_err().message,
            "unknown provider \"x\" in model \"x/y\"; enabled providers: none"
        );
    }

    #[test]
    fn keys_do_not_print() {
        let providers =
            Providers::from_vars(vars(&[("OPENAI_API_KEY", "sk-very-secret")])).unwrap();
        assert!(!format!("{providers:?}").contains("sk-very-secret"));
    }

    #[test]
    fn names_are_checked() {
        assert!(Provider::new("My Server", ProviderKind::OpenAiCompatible, "http://a").is_err());
        assert!(Provider::new("", ProviderKind::OpenAiCompatible, "http://a").is_err());
        assert!(Provider::new("llama-cpp_2", ProviderKind::OpenAiCompatible, "http://a").is_ok());
    }
}
