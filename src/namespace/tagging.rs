//! tags.json saves: the difference from what IAM holds, tag then untag,
//! the first undone if the second fails. Users, roles and instance
//! profiles have tags (groups do not).

use super::{Key, Namespace};
use crate::error::Result;
use crate::iam::{Iam, Kind, Tag};
use crate::policy;

/// What a tags.json belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tagged<'a> {
    Principal(Kind, &'a str),
    InstanceProfile(&'a str),
}

impl Tagged<'_> {
    fn name(&self) -> &str {
        match self {
            Tagged::Principal(_, name) | Tagged::InstanceProfile(name) => name,
        }
    }
}

impl Namespace {
    /// The tags IAM holds now (not the cache: a change made elsewhere since
    /// must count).
    async fn tags_in_iam(&self, target: Tagged<'_>) -> Result<Vec<Tag>> {
        Ok(match target {
            Tagged::Principal(kind, name) => self.iam.get_entity(kind, name).await?.tags,
            Tagged::InstanceProfile(name) => self.iam.get_instance_profile(name).await?.tags,
        }
        .unwrap_or_default())
    }

    async fn tag(&self, target: Tagged<'_>, tags: &[Tag]) -> Result<()> {
        match target {
            Tagged::Principal(kind, name) => self.iam.tag_entity(kind, name, tags).await,
            Tagged::InstanceProfile(name) => self.iam.tag_instance_profile(name, tags).await,
        }
    }

    async fn untag(&self, target: Tagged<'_>, keys: &[String]) -> Result<()> {
        match target {
            Tagged::Principal(kind, name) => self.iam.untag_entity(kind, name, keys).await,
            Tagged::InstanceProfile(name) => self.iam.untag_instance_profile(name, keys).await,
        }
    }

    pub(super) async fn save_tags(&self, target: Tagged<'_>, bytes: &[u8]) -> Result<()> {
        let wanted = policy::check_tags(bytes)?;
        let current = self.tags_in_iam(target).await?;
        let removed: Vec<String> = current
            .iter()
            .filter(|t| !wanted.iter().any(|(k, _)| *k == t.key))
            .map(|t| t.key.clone())
            .collect();
        let changed: Vec<Tag> = wanted
            .iter()
            .filter(|(k, v)| !current.iter().any(|t| t.key == *k && t.value == *v))
            .map(|(k, v)| Tag {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        // Two calls, and IAM has no transaction: if the second fails, the
        // first is undone, so a refused save leaves the tags as they were.
        if !changed.is_empty() {
            self.tag(target, &changed).await?;
        }
        if !removed.is_empty() {
            if let Err(e) = self.untag(target, &removed).await {
                self.undo_tagging(target, &current, &changed).await;
                return Err(e);
            }
        }
        let tags: Vec<Tag> = wanted
            .into_iter()
            .map(|(key, value)| Tag { key, value })
            .collect();
        match target {
            Tagged::Principal(kind, name) => self.edit_entity(kind, name, |e| e.tags = Some(tags)),
            Tagged::InstanceProfile(name) => self.cache.remove(&Key::InstanceProfile(name.into())),
        }
        Ok(())
    }

    /// Puts back the tags a failed save had set: the old values of changed
    /// keys, and no new keys. Failures here go to the log only.
    async fn undo_tagging(&self, target: Tagged<'_>, before: &[Tag], set: &[Tag]) {
        let restore: Vec<Tag> = set
            .iter()
            .filter_map(|t| before.iter().find(|b| b.key == t.key).cloned())
            .collect();
        let added: Vec<String> = set
            .iter()
            .filter(|t| !before.iter().any(|b| b.key == t.key))
            .map(|t| t.key.clone())
            .collect();
        let name = target.name();
        if !restore.is_empty() {
            if let Err(e) = self.tag(target, &restore).await {
                tracing::warn!(name, "could not restore tags after a failed save: {e}");
            }
        }
        if !added.is_empty() {
            if let Err(e) = self.untag(target, &added).await {
                tracing::warn!(name, "could not remove tags after a failed save: {e}");
            }
        }
    }
}
