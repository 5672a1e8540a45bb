//! Identity providers' files: SAML metadata (XML) and OIDC provider
//! documents, checked before CreateSAMLProvider, UpdateSAMLProvider or the
//! OpenID Connect calls.

use serde::Deserialize;

use super::message::{input_error, quoted};
use super::text::{decode_text, json_error_message};
use crate::error::Result;

/// IAM's bounds on a SAML metadata document, in characters.
const SAML_MIN: usize = 1000;
const SAML_MAX: usize = 10_000_000;
const URL_MAX: usize = 255;
const CLIENT_IDS_MAX: usize = 100;
const CLIENT_ID_MAX: usize = 255;
const THUMBPRINTS_MAX: usize = 5;

/// SAML metadata: well-formed XML whose root is an EntityDescriptor (or
/// EntitiesDescriptor), of a size IAM takes.
pub fn check_saml_metadata(bytes: &[u8]) -> Result<String> {
    let text = decode_text(bytes).map_err(input_error)?;
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| input_error(format!("not SAML metadata: the XML is malformed: {e}")))?;
    let root = doc.root_element().tag_name().name();
    if !matches!(root, "EntityDescriptor" | "EntitiesDescriptor") {
        return Err(input_error(format!(
            "not SAML metadata: the root element is {}, not EntityDescriptor",
            quoted(root)
        )));
    }
    let chars = text.chars().count();
    if !(SAML_MIN..=SAML_MAX).contains(&chars) {
        return Err(input_error(format!(
            "SAML metadata of {chars} characters; IAM takes {SAML_MIN} to {SAML_MAX}"
        )));
    }
    Ok(text.to_string())
}

/// A SAML provider's name: 1-128 of `[\w._-]`.
pub fn check_saml_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(input_error(format!(
            "SAML provider name {}: IAM takes 1 to 128 ASCII letters, digits and . _ -",
            quoted(name)
        )))
    }
}

/// What an OIDC provider's file holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcFile {
    #[serde(rename = "Url")]
    url: String,
    #[serde(rename = "ClientIDList", default)]
    client_ids: Vec<String>,
    #[serde(rename = "ThumbprintList", default)]
    thumbprints: Vec<String>,
}

/// An OIDC provider document, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcDocument {
    /// Host and path, as IAM keeps the URL (without https://).
    pub url: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
}

/// `{"Url": "https://...", "ClientIDList": [...], "ThumbprintList": [...]}`.
pub fn check_oidc(bytes: &[u8]) -> Result<OidcDocument> {
    let text = decode_text(bytes).map_err(input_error)?;
    let file: OidcFile =
        serde_json::from_str(text).map_err(|err| input_error(json_error_message(text, &err)))?;
    let Some(host_path) = file.url.strip_prefix("https://").filter(|h| !h.is_empty()) else {
        return Err(input_error(format!(
            "Url {}: an OpenID Connect provider's URL starts with https://",
            quoted(&file.url)
        )));
    };
    if file.url.len() > URL_MAX || host_path.contains(['?', '#', ' ']) {
        return Err(input_error(format!(
            "Url {}: IAM takes an https URL of at most {URL_MAX} characters, without query or fragment",
            quoted(&file.url)
        )));
    }
    if file.client_ids.len() > CLIENT_IDS_MAX {
        return Err(input_error(format!(
            "{} client ids; IAM allows at most {CLIENT_IDS_MAX}",
            file.client_ids.len()
        )));
    }
    if let Some(id) = file
        .client_ids
        .iter()
        .find(|id| !(1..=CLIENT_ID_MAX).contains(&id.len()))
    {
        return Err(input_error(format!(
            "client id {}: IAM takes 1 to {CLIENT_ID_MAX} characters",
            quoted(id)
        )));
    }
    if file.thumbprints.len() > THUMBPRINTS_MAX {
        return Err(input_error(format!(
            "{} thumbprints; IAM allows at most {THUMBPRINTS_MAX}",
            file.thumbprints.len()
        )));
    }
    if let Some(t) = file
        .thumbprints
        .iter()
        .find(|t| t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(input_error(format!(
            "thumbprint {}: a thumbprint is 40 hexadecimal characters (the SHA-1 of the certificate)",
            quoted(t)
        )));
    }
    Ok(OidcDocument {
        url: host_path.trim_end_matches('/').to_string(),
        client_ids: file.client_ids,
        thumbprints: file.thumbprints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testing::{assert_mentions, saml_metadata as metadata};

    #[test]
    fn saml_metadata_must_be_xml_metadata() {
        check_saml_metadata(metadata().as_bytes()).unwrap();
        for (bad, words) in [
            ("not xml at all".to_string(), &["malformed"][..]),
            (
                metadata().replace("</EntityDescriptor>", ""),
                &["malformed"],
            ),
            (
                format!("<html>{}</html>", "x".repeat(1200)),
                &["root element", "html"],
            ),
            (
                r#"<EntityDescriptor entityID="x"/>"#.to_string(),
                &["1000 to"],
            ),
        ] {
            assert_mentions(
                &check_saml_metadata(bad.as_bytes()).unwrap_err().message,
                words,
            );
        }
        check_saml_name("Okta_prod-1.x").unwrap();
        assert!(check_saml_name("has space").is_err());
    }

    #[test]
    fn oidc_documents_are_checked() {
        let ok = check_oidc(
            br#"{"Url": "https://token.actions.githubusercontent.com", "ClientIDList": ["sts.amazonaws.com"],
                 "ThumbprintList": ["6938fd4d98bab03faadb97b34396831e3780aea1"]}"#,
        )
        .unwrap();
        assert_eq!(ok.url, "token.actions.githubusercontent.com");
        for (bad, words) in [
            (&br#"{"Url": "http://x.example.com"}"#[..], &["https://"][..]),
            (br#"{"Url": "https://x.example.com", "ThumbprintList": ["abc"]}"#, &["40 hexadecimal"]),
            (
                br#"{"Url": "https://x.example.com", "ThumbprintList": ["zz38fd4d98bab03faadb97b34396831e3780aea1"]}"#,
                &["40 hexadecimal"],
            ),
            (br#"{"Url": "https://x.example.com", "Clients": []}"#, &["unknown field"]),
            (br#"{"ClientIDList": []}"#, &["missing field", "Url"]),
        ] {
            assert_mentions(&check_oidc(bad).unwrap_err().message, words);
        }
    }
}
