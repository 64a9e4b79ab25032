//! AWS Signature Version 4 for Bedrock requests, through the `aws-sigv4` crate.

use super::super::RequestError;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::StatusCode;
use std::fmt;
use std::time::SystemTime;

/// The AWS credentials and region a Bedrock provider signs its requests with. `Debug` shows
/// the access key id and region, never the secret or the session token.
///
/// ```
/// use tower_llm_stream::provider::bedrock::AwsCredentials;
///
/// let credentials = AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, "us-east-1");
/// assert!(!format!("{credentials:?}").contains("wJalr"));
/// ```
#[derive(Clone)]
pub struct AwsCredentials {
    identity: Identity,
    access_key_id: String,
    region: String,
}

impl AwsCredentials {
    /// Credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optionally
    /// `AWS_SESSION_TOKEN`) for a region (`AWS_REGION`).
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
        region: impl Into<String>,
    ) -> Self {
        let access_key_id = access_key_id.into();
        let credentials = Credentials::new(
            access_key_id.clone(),
            secret_access_key,
            session_token,
            None,
            "environment",
        );
        AwsCredentials {
            identity: credentials.into(),
            access_key_id,
            region: region.into(),
        }
    }

    /// The secret access key and the session token: what must never be shown
    /// ([`Provider::secrets`](crate::provider::Provider::secrets)).
    #[must_use]
    pub fn secrets(&self) -> Vec<&str> {
        let Some(credentials) = self.identity.data::<Credentials>() else {
            return Vec::new();
        };
        let mut secrets = vec![credentials.secret_access_key()];
        secrets.extend(credentials.session_token());
        secrets
    }

    /// The region requests are signed for.
    #[must_use]
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Signs `request` (its method, URL, headers and body) for the `bedrock` service: adds
    /// `authorization`, `x-amz-date`, and `x-amz-security-token` for temporary credentials.
    pub(crate) fn sign(&self, request: &mut http::Request<Bytes>) -> Result<(), RequestError> {
        let failed = |what: &dyn fmt::Display| RequestError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "signing_failed",
            message: format!(
                "cannot sign the Bedrock request: {what}; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION"
            ),
        };
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("bedrock")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers,
            SignableBody::Bytes(request.body()),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        // The signature and the session token are credentials: never shown by `Debug`.
        for name in [http::header::AUTHORIZATION.as_str(), "x-amz-security-token"] {
            if let Some(value) = request.headers_mut().get_mut(name) {
                value.set_sensitive(true);
            }
        }
        Ok(())
    }
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}
