//! Changes: every save, mkdir, rm, ln -s and mv becomes its IAM call after
//! the local checks; editors' scratch files stay in memory.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use serde_json::Value;

use super::edits::{Draft, DraftRef};
use super::tagging::Tagged;
use super::{CachedEntity, Content, Listing, Namespace};
use crate::cache::Key;
use crate::document;
use crate::error::{ErrorKind, IamError, Result};
use crate::iam::{collect_pages, Iam, Kind, ManagedPolicy, PolicyScope, SERVICE_ROLE_PATH};
use crate::node::{is_version_id, kind_dir, Node, Owner, JSON};
use crate::policy::{self, DocumentKind, NameRule};
use crate::scratch::{is_editor_name, is_scratch_name, write_at, ScratchFile};

/// Largest document a draft may hold. IAM's largest is a role's inline
/// policies at 10,240 characters; pretty-printing and whitespace make a
/// saved file several times that, never a mebibyte.
pub const DOCUMENT_MAX: u64 = 1 << 20;

fn too_large(node: &Node, size: u64) -> IamError {
    IamError::new(
        ErrorKind::TooLarge,
        "DocumentTooLarge",
        format!(
            "{}: {size} bytes is past the {DOCUMENT_MAX}-byte limit; no IAM document is that large",
            node.path()
        ),
    )
}

/// What `create` made.
pub enum Created {
    Document(Node, DraftRef),
    Scratch(Node),
}

fn not_permitted(message: String) -> IamError {
    IamError::new(ErrorKind::NotPermitted, "NotPermitted", message)
}

fn invalid(message: String) -> IamError {
    IamError::new(ErrorKind::InvalidInput, "InvalidInput", message)
}

/// The document a name in a folder would be, if the name is not an editor's
/// scratch name.
fn document_node(dir: &Node, name: &str) -> Option<Node> {
    let node = dir.child(name)?;
    let scratch = match dir {
        Node::InlineDir(..) | Node::PoliciesDir(_) | Node::OidcDir => is_scratch_name(name),
        Node::SamlDir => is_editor_name(name),
        _ => false,
    };
    if !node.is_editable() || scratch {
        return None;
    }
    Some(node)
}

impl Namespace {
    pub fn check_writable(&self, node: &Node) -> Result<()> {
        if self.settings.read_only {
            return Err(IamError::read_only(format!(
                "{} (mounted --read-only)",
                node.path()
            )));
        }
        if !node.is_editable() {
            return Err(IamError::new(
                ErrorKind::AccessDenied,
                "ReadOnlyFile",
                format!(
                    "{} is read-only: IAM does not let it be edited",
                    node.path()
                ),
            ));
        }
        Ok(())
    }

    fn check_mutable(&self, what: &str) -> Result<()> {
        if self.settings.read_only {
            return Err(IamError::read_only(format!("{what} (mounted --read-only)")));
        }
        Ok(())
    }

    /// Opens a document for writing: its bytes, or nothing with O_TRUNC.
    /// Every open file has its own draft, so concurrent saves of one document
    /// each commit a whole version, never a mix.
    pub async fn open_document(&self, node: &Node, truncate: bool) -> Result<DraftRef> {
        self.check_writable(node)?;
        let data = if truncate {
            Vec::new()
        } else {
            self.read(node).await?.to_vec()
        };
        Ok(Arc::new(Mutex::new(Draft {
            data,
            ..Draft::default()
        })))
    }

    /// Creates a file: a new document, or a scratch file for any other name.
    pub async fn create(&self, dir: &Node, name: &str, perm: u16) -> Result<Created> {
        self.check_mutable(&format!("{}/{name}", dir.path()))?;
        if let Some(node) = document_node(dir, name) {
            self.check_writable(&node)?;
            let draft: DraftRef = Arc::default();
            // Over a name rm removed (unlink then create), the save replaces
            // the document.
            self.edits.created(&node, draft.clone());
            return Ok(Created::Document(node, draft));
        }
        if let Some(Node::Version(policy, _)) = dir.child(name) {
            return Err(IamError::new(
                ErrorKind::AccessDenied,
                "ReadOnlyFolder",
                format!(
                    "policy versions are made by saving policies/{policy}{JSON}, not created here"
                ),
            ));
        }
        if matches!(dir, Node::PoliciesDir(PolicyScope::Aws)) && !is_scratch_name(name) {
            return Err(IamError::new(
                ErrorKind::AccessDenied,
                "ReadOnlyFolder",
                "AWS-managed policies cannot be created or changed",
            ));
        }
        self.scratch
            .create(dir, name, ScratchFile::new(perm, None))?;
        Ok(Created::Scratch(Node::Scratch(
            Box::new(dir.clone()),
            name.into(),
        )))
    }

    /// An unsaved created document disappears when its last handle closes;
    /// if it replaced one removed by rm, that removal goes ahead.
    pub fn release_draft(&self, node: &Node, draft: &DraftRef) {
        self.edits.released(node, draft);
    }

    /// Deletes in IAM the documents removed by rm at or before `due` -
    /// UNLINK_GRACE and not created again since. Returns the nodes settled;
    /// a refusal goes to `.iamfs/errors` (the rm itself already returned).
    pub async fn settle_pending_deletes(&self, now: Instant) -> Vec<Node> {
        let due = self.edits.take_due_deletes(now, None);
        for node in &due {
            if let Err(e) = self.delete_document(node).await {
                self.delete_refused(node, e);
            }
        }
        due
    }

    /// rm had already returned: the refusal goes to `.iamfs/errors`.
    fn delete_refused(&self, node: &Node, e: IamError) {
        let e = IamError::new(
            e.kind,
            e.code,
            format!(
                "rm was not carried out in IAM, and the file shows IAM's document again: {}",
                e.message
            ),
        );
        self.errors.record(&node.path(), "unlink", &e);
    }

    /// Settles now the pending deletes of documents inside `entity`'s folder.
    async fn settle_pending_of(&self, kind: Kind, entity: &str) {
        let inside = |n: &Node| matches!(n, Node::Inline(k, e, _) if *k == kind && e == entity);
        for node in self.edits.take_due_deletes(Instant::now(), Some(&inside)) {
            if let Err(e) = self.delete_document(&node).await {
                self.delete_refused(&node, e);
            }
        }
    }

    /// Whether any rm is waiting for its grace to pass.
    pub fn has_pending_deletes(&self) -> bool {
        self.edits.has_pending_deletes()
    }

    /// Commits a draft if it was written to: once, and only if it changed
    /// something. Its error is the one close() and fsync() return.
    pub async fn commit(&self, node: &Node, draft: &DraftRef) -> Result<()> {
        let bytes = {
            let mut d = draft.lock();
            if d.nameless || self.edits.is_pending_delete(node) {
                d.dirty = false;
                return Ok(());
            }
            if !d.dirty {
                return d.failed.clone().map_or(Ok(()), Err);
            }
            d.data.clone()
        };
        let result = {
            let _one_at_a_time = self.commit_locks.lock(node).await;
            self.save(node, &bytes).await
        };
        {
            let mut d = draft.lock();
            d.dirty = false;
            d.failed = result.clone().err();
        }
        match &result {
            Ok(()) => self.edits.saved_to_iam(node, bytes),
            Err(_) => self.edits.save_refused(node, draft),
        }
        result
    }

    /// Saves a document's bytes to IAM after the local checks.
    async fn save(&self, node: &Node, bytes: &[u8]) -> Result<()> {
        self.check_writable(node)?;
        self.check_not_service_linked(node).await?;
        match node {
            Node::RoleSettings(role) => self.save_settings(role, bytes).await,
            Node::PasswordPolicy => self.save_password_policy(bytes).await,
            Node::SamlProvider(name) => self.save_saml(name, bytes).await,
            Node::OidcProvider(url) => self.save_oidc(url, bytes).await,
            Node::AccountAlias => self.save_alias(bytes).await,
            Node::Policy(_, name) => self.save_managed(name, bytes).await,
            Node::Inline(kind, entity, name) => self.save_inline(*kind, entity, name, bytes).await,
            Node::TrustPolicy(role) => self.save_trust(role, bytes).await,
            Node::Tags(kind, entity) => {
                self.save_tags(Tagged::Principal(*kind, entity), bytes)
                    .await
            }
            Node::InstanceProfileTags(profile) => {
                self.save_tags(Tagged::InstanceProfile(profile), bytes)
                    .await
            }
            _ => Err(not_permitted(format!("{} cannot be saved", node.path()))),
        }
    }

    // Each edit drops what a fetch under way brings when nothing is cached
    // (`Cache::edit`): it may have read IAM before the save.
    fn edit_policies(&self, f: impl FnOnce(&mut Vec<ManagedPolicy>)) {
        let key = Key::Policies(PolicyScope::Local);
        self.cache.edit(key, |list: &Listing<ManagedPolicy>| {
            let mut items = list.clone().into_items();
            f(&mut items);
            Listing::new(items)
        });
    }

    fn edit_names(&self, key: Key, f: impl FnOnce(&mut Vec<String>)) {
        self.cache.edit(key, |list: &Vec<String>| {
            let mut list = list.clone();
            f(&mut list);
            list
        });
    }

    pub(super) fn edit_entity(
        &self,
        kind: Kind,
        name: &str,
        f: impl FnOnce(&mut crate::iam::Entity),
    ) {
        let key = Key::Entity(kind, name.into());
        self.cache.edit(key, |cached: &CachedEntity| {
            let mut e = cached.entity.clone();
            f(&mut e);
            CachedEntity::from(e)
        });
    }

    async fn save_managed(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let doc = policy::check_policy(bytes, DocumentKind::Managed)?;
        let compact = doc.to_string();
        let existing = self.policies(PolicyScope::Local).await?.get(name).cloned();
        let Some(existing) = existing else {
            policy::check_name(name, NameRule::POLICY)?;
            let created = self.iam.create_policy(name, &compact).await?;
            self.cache.insert(
                Key::PolicyDoc(created.arn.clone(), created.default_version_id.clone()),
                document::render(&doc),
            );
            self.edit_policies(|list| list.push(created));
            return Ok(());
        };
        // Compare with what IAM holds now, not the cache: a change made
        // elsewhere since must not turn this save into a no-op.
        let versions = collect_pages(|m| self.iam.list_policy_versions(&existing.arn, m)).await?;
        let default = versions
            .iter()
            .find(|v| v.is_default)
            .map_or_else(|| existing.default_version_id.clone(), |v| v.id.clone());
        let current =
            document::decode_policy(&self.iam.get_policy_version(&existing.arn, &default).await?);
        if policy::same_policy(&current, &doc) {
            return Ok(());
        }
        // IAM keeps five versions: make room by deleting the oldest non-default one.
        if versions.len() >= 5 {
            if let Some(oldest) = versions
                .iter()
                .filter(|v| !v.is_default)
                .min_by_key(|v| v.create_date)
            {
                self.iam
                    .delete_policy_version(&existing.arn, &oldest.id)
                    .await?;
            }
        }
        let version = self
            .iam
            .create_policy_version(&existing.arn, &compact)
            .await?;
        self.cache.remove(&Key::Versions(name.into()));
        self.cache.insert(
            Key::PolicyDoc(existing.arn.clone(), version.clone()),
            document::render(&doc),
        );
        self.edit_policies(|list| {
            if let Some(p) = list.iter_mut().find(|p| p.name == name) {
                p.default_version_id = version;
                p.update_date = SystemTime::now();
            }
        });
        Ok(())
    }

    async fn save_inline(&self, kind: Kind, entity: &str, name: &str, bytes: &[u8]) -> Result<()> {
        let names = self.inline_names(kind, entity).await?;
        let mut others_size = 0;
        for other in names.iter().filter(|n| *n != name) {
            let doc = self.inline_document(kind, entity, other).await?;
            others_size += policy::policy_size(&String::from_utf8_lossy(&doc));
        }
        let doc = policy::check_policy(bytes, DocumentKind::Inline { kind, others_size })?;
        // What IAM holds now, not the cache (see save_managed).
        match self.iam.get_inline_policy(kind, entity, name).await {
            Ok(raw) if policy::same_policy(&document::decode_policy(&raw), &doc) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NoSuchEntity => {
                policy::check_name(name, NameRule::POLICY)?;
            }
            Err(e) => return Err(e),
        }
        self.iam
            .put_inline_policy(kind, entity, name, &doc.to_string())
            .await?;
        self.cache.insert(
            Key::InlineDoc(kind, entity.into(), name.into()),
            document::render(&doc),
        );
        self.edit_names(Key::InlineNames(kind, entity.into()), |list| {
            if !list.iter().any(|n| n == name) {
                list.push(name.into());
            }
        });
        Ok(())
    }

    async fn save_trust(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let doc = policy::check_policy(bytes, DocumentKind::Trust)?;
        let current = self.iam.get_entity(Kind::Role, role).await?;
        let current_doc = document::decode_policy(current.trust_policy.as_deref().unwrap_or("{}"));
        if policy::same_policy(&current_doc, &doc) {
            return Ok(());
        }
        let compact = doc.to_string();
        self.iam.update_trust_policy(role, &compact).await?;
        self.edit_entity(Kind::Role, role, |e| e.trust_policy = Some(compact));
        Ok(())
    }

    async fn save_settings(&self, role: &str, bytes: &[u8]) -> Result<()> {
        let wanted = policy::check_role_settings(bytes)?;
        let current = self.iam.get_entity(Kind::Role, role).await?;
        if current.description.as_deref().unwrap_or_default() == wanted.description
            && current.max_session_duration == Some(wanted.max_session_duration)
        {
            return Ok(());
        }
        self.iam
            .update_role(role, &wanted.description, wanted.max_session_duration)
            .await?;
        self.edit_entity(Kind::Role, role, |e| {
            e.description = Some(wanted.description);
            e.max_session_duration = Some(wanted.max_session_duration);
        });
        // The listing carries both too, and a bulk read merges it in.
        self.cache.remove(&Key::Entities(Kind::Role));
        Ok(())
    }

    async fn save_password_policy(&self, bytes: &[u8]) -> Result<()> {
        let wanted = policy::check_password_policy(bytes)?;
        let current = self.iam.get_password_policy().await?;
        if current.as_ref().is_some_and(|c| wanted.same_as(c)) {
            return Ok(());
        }
        self.iam.update_password_policy(&wanted).await?;
        // IAM computes ExpirePasswords: read it back rather than guess.
        self.cache.remove(&Key::PasswordPolicy);
        self.cache.remove(&Key::AccountSummary);
        Ok(())
    }

    async fn save_saml(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let metadata = policy::check_saml_metadata(bytes)?;
        let existing = self
            .iam
            .list_saml_providers()
            .await?
            .into_iter()
            .find(|p| p.name() == name);
        match existing {
            Some(p) => {
                if self.iam.get_saml_provider(&p.arn).await? == metadata {
                    return Ok(());
                }
                self.iam.update_saml_provider(&p.arn, &metadata).await?;
                self.cache.remove(&Key::SamlMetadata(p.arn));
            }
            None => {
                policy::check_saml_name(name)?;
                self.iam.create_saml_provider(name, &metadata).await?;
            }
        }
        self.cache.remove(&Key::SamlProviders);
        Ok(())
    }

    /// An OIDC provider's file: the difference from what IAM holds, one
    /// call per client id added or removed and one for the thumbprints.
    async fn save_oidc(&self, url: &str, bytes: &[u8]) -> Result<()> {
        let wanted = policy::check_oidc(bytes)?;
        if wanted.url != url {
            let file = format!("{}{JSON}", crate::node::oidc_file_of_url(&wanted.url));
            return Err(invalid(format!(
                "the Url names the file: a provider at https://{} is identity-providers/oidc/{file}, and IAM cannot change a provider's URL",
                wanted.url
            )));
        }
        self.cache.remove(&Key::OidcProviders);
        let Some(arn) = self.oidc_arn(url).await? else {
            self.iam
                .create_oidc_provider(
                    &format!("https://{url}"),
                    &wanted.client_ids,
                    &wanted.thumbprints,
                )
                .await?;
            self.cache.remove(&Key::OidcProviders);
            return Ok(());
        };
        let current = self.iam.get_oidc_provider(&arn).await?;
        self.cache.remove(&Key::OidcProvider(arn.clone()));
        for id in wanted
            .client_ids
            .iter()
            .filter(|id| !current.client_ids.contains(id))
        {
            self.iam.add_oidc_client_id(&arn, id).await?;
        }
        for id in current
            .client_ids
            .iter()
            .filter(|id| !wanted.client_ids.contains(id))
        {
            self.iam.remove_oidc_client_id(&arn, id).await?;
        }
        let mut have = current.thumbprints.clone();
        let mut want = wanted.thumbprints.clone();
        have.sort();
        want.sort();
        if have != want {
            self.iam
                .update_oidc_thumbprints(&arn, &wanted.thumbprints)
                .await?;
        }
        Ok(())
    }

    /// A provider named in a role's trust policy is in use: rm is refused.
    async fn check_provider_unused(&self, node: &Node, arn: &str) -> Result<()> {
        // What IAM holds now: deleting a provider in use breaks sign-in.
        let roles = collect_pages(|m| self.iam.list_entities(Kind::Role, m)).await?;
        let users: Vec<String> = roles
            .iter()
            .filter(|r| {
                r.trust_policy
                    .as_deref()
                    .is_some_and(|t| document::decode_policy(t).to_string().contains(arn))
            })
            .map(|r| format!("roles/{}", r.name))
            .collect();
        if users.is_empty() {
            return Ok(());
        }
        Err(IamError::new(
            ErrorKind::Busy,
            "ProviderInUse",
            format!(
                "{} is named in the trust policy of {}; change those first",
                node.path(),
                users.join(", ")
            ),
        ))
    }

    /// An account has one alias: a new one replaces the old, and the old
    /// comes back if IAM refuses the new.
    async fn save_alias(&self, bytes: &[u8]) -> Result<()> {
        let wanted = policy::check_alias(bytes)?;
        let current = self.iam.list_account_aliases().await?;
        if current.contains(&wanted) {
            return Ok(());
        }
        for old in &current {
            self.iam.delete_account_alias(old).await?;
        }
        if let Err(e) = self.iam.create_account_alias(&wanted).await {
            for old in &current {
                if let Err(undo) = self.iam.create_account_alias(old).await {
                    tracing::warn!("could not restore the account alias {old}: {undo}");
                }
            }
            self.cache.remove(&Key::Aliases);
            return Err(e);
        }
        self.cache.insert(Key::Aliases, vec![wanted]);
        Ok(())
    }

    /// IAM lets only its AWS service change a service-linked role
    /// (UnmodifiableEntity): refused here before any call.
    async fn check_not_service_linked(&self, node: &Node) -> Result<()> {
        for owner in node.owners() {
            if let Owner::Entity(Kind::Role, role) = owner {
                let e = self.entity(Kind::Role, role).await?;
                if e.path.starts_with(SERVICE_ROLE_PATH) {
                    return Err(IamError::new(
                        ErrorKind::Unmodifiable,
                        "UnmodifiableEntity",
                        format!(
                            "roles/{role} is a service-linked role (path {}): only the AWS service that owns it can change it",
                            e.path
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    // ---- scratch file I/O ---------------------------------------------------

    pub fn scratch_read(&self, node: &Node) -> Result<Vec<u8>> {
        let (dir, name) = scratch_key(node)?;
        self.scratch
            .get(dir, name)
            .map(|f| f.data)
            .ok_or_else(|| IamError::no_such_entity(node.path()))
    }

    pub fn scratch_write(&self, node: &Node, offset: u64, data: &[u8]) -> Result<()> {
        let (dir, name) = scratch_key(node)?;
        self.scratch.write(dir, name, offset, data)
    }

    /// chmod, truncate and utimes of a scratch file.
    pub fn scratch_set(
        &self,
        node: &Node,
        perm: Option<u16>,
        size: Option<u64>,
        mtime: Option<SystemTime>,
    ) -> Result<()> {
        let (dir, name) = scratch_key(node)?;
        self.scratch.set(dir, name, perm, size, mtime)
    }

    /// Bytes held by editors' files, and their limit (statfs).
    pub fn scratch_space(&self) -> (u64, u64) {
        (self.scratch.used(), crate::scratch::SCRATCH_TOTAL_MAX)
    }

    /// A write into a draft; refused past DOCUMENT_MAX before anything is
    /// allocated.
    pub fn draft_write(node: &Node, draft: &DraftRef, offset: u64, data: &[u8]) -> Result<()> {
        let end = offset.saturating_add(data.len() as u64);
        if end > DOCUMENT_MAX {
            return Err(too_large(node, end));
        }
        let mut d = draft.lock();
        write_at(&mut d.data, offset, data);
        d.dirty = true;
        d.failed = None;
        Ok(())
    }

    /// A truncate on the way to a rewrite: never committed by itself.
    pub fn draft_truncate(node: &Node, draft: &DraftRef, size: u64) -> Result<()> {
        if size > DOCUMENT_MAX {
            return Err(too_large(node, size));
        }
        draft.lock().data.resize(size as usize, 0);
        Ok(())
    }

    /// A truncate of a document without an open file: only to its own size
    /// (a no-op); anything else must go through a rewrite.
    pub async fn truncate_closed(&self, node: &Node, size: u64) -> Result<()> {
        if size > DOCUMENT_MAX && node.file_kind() == crate::node::FileKind::File {
            self.check_writable(node)?;
            return Err(too_large(node, size));
        }
        if size == self.attr(node).await?.size {
            return Ok(());
        }
        self.check_writable(node)?;
        Err(IamError::new(
            ErrorKind::InvalidInput,
            "Truncate",
            format!(
                "{}: truncate it through an open file and write the whole document",
                node.path()
            ),
        ))
    }

    // ---- folders and names ----------------------------------------------------

    /// mkdir users/X, groups/X, roles/X.
    pub async fn mkdir(&self, dir: &Node, name: &str) -> Result<Node> {
        self.check_mutable(&format!("{}/{name}", dir.path()))?;
        if *dir == Node::InstanceProfilesDir {
            policy::check_name(name, NameRule::INSTANCE_PROFILE)?;
            let made = self.iam.create_instance_profile(name).await?;
            self.cache.remove(&Key::InstanceProfiles);
            self.cache.insert(Key::InstanceProfile(name.into()), made);
            return Ok(Node::InstanceProfileDir(name.into()));
        }
        let Node::KindDir(kind) = dir else {
            return Err(not_permitted(format!(
                "{}: folders here are IAM's; only users/, groups/ and roles/ take new ones",
                dir.path()
            )));
        };
        policy::check_name(name, NameRule::entity(*kind))?;
        let trust = if *kind == Kind::Role {
            // In the caller's partition (aws-cn, aws-us-gov...).
            let root = self.identity().await?.account_root();
            Some(
                serde_json::json!({
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Effect": "Allow",
                        "Principal": {"AWS": root},
                        "Action": "sts:AssumeRole"
                    }]
                })
                .to_string(),
            )
        } else {
            None
        };
        let entity = self
            .iam
            .create_entity(*kind, name, trust.as_deref())
            .await?;
        self.cache.remove(&Key::Entities(*kind));
        // A new entity is empty: its folders need no call to list.
        self.cache
            .insert(Key::InlineNames(*kind, name.into()), Vec::<String>::new());
        self.cache
            .insert(Key::Links(*kind, name.into()), Vec::<String>::new());
        self.cache.insert(
            Key::Attached(*kind, name.into()),
            Vec::<crate::iam::AttachedPolicy>::new(),
        );
        self.cache
            .insert(Key::Entity(*kind, name.into()), CachedEntity::from(entity));
        Ok(Node::EntityDir(*kind, name.into()))
    }

    /// rmdir of an entity: only when its folder is empty in the filesystem's sense.
    pub async fn rmdir(&self, dir: &Node, name: &str) -> Result<()> {
        self.check_mutable(&format!("{}/{name}", dir.path()))?;
        let node = self.lookup(dir, name).await?;
        if let Node::InstanceProfileDir(profile) = &node {
            return self.remove_instance_profile(&node, profile).await;
        }
        let Node::EntityDir(kind, entity) = &node else {
            return Err(not_permitted(format!("{} cannot be removed", node.path())));
        };
        self.check_not_service_linked(&node).await?;
        let (kind, entity) = (*kind, entity.as_str());
        // An rm inside it not yet sent to IAM would keep IAM's folder full.
        self.settle_pending_of(kind, entity).await;
        let mut left = Vec::new();
        let inline = self.inline_names(kind, entity).await?;
        if !inline.is_empty() {
            left.push(format!("inline policies ({})", inline.join(", ")));
        }
        let attached = self.attached(kind, entity).await?;
        if !attached.is_empty() {
            let names: Vec<&str> = attached.iter().map(|a| a.name.as_str()).collect();
            left.push(format!("attached policies ({})", names.join(", ")));
        }
        if kind != Kind::Role {
            let links = self.links(kind, entity).await?;
            if !links.is_empty() {
                let what = if kind == Kind::User {
                    "groups"
                } else {
                    "members"
                };
                left.push(format!("{what} ({})", links.join(", ")));
            }
        } else {
            let profiles = self.profiles_of_role(entity).await?;
            if !profiles.is_empty() {
                left.push(format!("instance profiles ({})", profiles.join(", ")));
            }
        }
        if kind == Kind::User {
            let keys: Value =
                serde_json::from_slice(&self.access_keys(entity).await?).unwrap_or(Value::Null);
            if keys.as_array().is_some_and(|k| !k.is_empty()) {
                left.push("access keys".into());
            }
        }
        let unsaved: Vec<String> = self
            .edits
            .drafts_where(|n| matches!(n, Node::Inline(k, e, _) if *k == kind && e == entity))
            .iter()
            .map(Node::path)
            .collect();
        if !unsaved.is_empty() {
            left.push(format!(
                "new documents not saved yet ({})",
                unsaved.join(", ")
            ));
        }
        let editors_files = self.scratch.names_within(&node);
        if !editors_files.is_empty() {
            left.push(format!("editors' files ({})", editors_files.join(", ")));
        }
        if !left.is_empty() {
            return Err(IamError::new(
                ErrorKind::NotEmpty,
                "NotEmpty",
                format!("{} still has {}", node.path(), left.join(", ")),
            ));
        }
        self.iam.delete_entity(kind, entity).await?;
        self.forget_entity(kind, entity);
        Ok(())
    }

    fn forget_entity(&self, kind: Kind, entity: &str) {
        self.cache.remove(&Key::Entities(kind));
        for key in [
            Key::Entity(kind, entity.into()),
            Key::InlineNames(kind, entity.into()),
            Key::Attached(kind, entity.into()),
            Key::Links(kind, entity.into()),
        ] {
            self.cache.remove(&key);
        }
    }

    /// rm of a file or link.
    pub async fn unlink(&self, dir: &Node, name: &str) -> Result<Node> {
        let node = self.lookup(dir, name).await?;
        if let Node::Scratch(d, n) | Node::ScratchLink(d, n) = &node {
            self.scratch.remove(d, n)?;
            return Ok(node);
        }
        // A created document not saved yet exists only here; if it
        // replaced one removed by rm, that removal goes ahead.
        if self.edits.unlink_draft(&node) {
            return Ok(node);
        }
        // An editor cleaning up after a refused save: empty the name again.
        if self
            .edits
            .recover(&node, |(dir, name)| self.scratch.contains(dir, name))
        {
            return Ok(node);
        }
        self.check_mutable(&node.path())?;
        self.check_not_service_linked(&node).await?;
        match &node {
            // Whether an attached policy may go is checked once the grace
            // has passed: `install` over an attached policy is a save.
            Node::Inline(..)
            | Node::TrustPolicy(_)
            | Node::RoleSettings(_)
            | Node::Tags(..)
            | Node::PasswordPolicy
            | Node::SamlProvider(_)
            | Node::OidcProvider(_)
            | Node::InstanceProfileTags(_)
            | Node::AccountAlias => {}
            Node::InstanceProfileRole(profile, role) | Node::RoleInstanceProfile(role, profile) => {
                self.iam
                    .remove_role_from_instance_profile(profile, role)
                    .await?;
                self.cache.remove(&Key::InstanceProfiles);
                self.cache.remove(&Key::InstanceProfile(profile.clone()));
                return Ok(node);
            }
            Node::Boundary(kind, entity) => {
                self.iam.delete_permissions_boundary(*kind, entity).await?;
                self.edit_entity(*kind, entity, |e| e.permissions_boundary = None);
                return Ok(node);
            }
            Node::Version(policy, id) => {
                self.delete_version(policy, id).await?;
                return Ok(node);
            }
            Node::DefaultVersion(_) => {
                return Err(not_permitted(format!(
                "{}: a policy always has a default version; choose another with ln -sfn vN.json {}",
                node.path(),
                node.name()
            )))
            }
            Node::Policy(PolicyScope::Local, _) => {}
            Node::Attached(kind, entity, policy) => {
                let arn = self
                    .attached(*kind, entity)
                    .await?
                    .iter()
                    .find(|a| &a.name == policy)
                    .map(|a| a.arn.clone())
                    .ok_or_else(|| IamError::no_such_entity(node.path()))?;
                self.iam.detach_policy(*kind, entity, &arn).await?;
                self.attachments_changed(*kind, entity, policy, &arn);
                return Ok(node);
            }
            Node::Link(kind, entity, other) => {
                let (user, group) = if *kind == Kind::User {
                    (entity, other)
                } else {
                    (other, entity)
                };
                self.iam.remove_user_from_group(user, group).await?;
                self.cache.remove(&Key::Links(Kind::User, user.clone()));
                self.cache.remove(&Key::Links(Kind::Group, group.clone()));
                return Ok(node);
            }
            _ => {
                return Err(not_permitted(format!(
                    "{} cannot be removed; it is part of its IAM entity",
                    node.path()
                )))
            }
        }
        // A document: hidden now, deleted after UNLINK_GRACE unless a create
        // of the name replaces it first (install's unlink + create).
        self.edits.removed(&node);
        Ok(node)
    }

    /// The IAM side of rm of a document, once its grace has passed. A trust
    /// policy or tags.json cannot be deleted: the name shows IAM's again.
    async fn delete_document(&self, node: &Node) -> Result<()> {
        match node {
            Node::Inline(kind, entity, policy) => {
                self.iam.delete_inline_policy(*kind, entity, policy).await?;
                self.cache
                    .remove(&Key::InlineDoc(*kind, entity.clone(), policy.clone()));
                self.edit_names(Key::InlineNames(*kind, entity.clone()), |l| {
                    l.retain(|n| n != policy)
                });
            }
            Node::Policy(PolicyScope::Local, name) => self.delete_managed(name).await?,
            Node::PasswordPolicy => {
                self.iam.delete_password_policy().await?;
                self.cache
                    .insert(Key::PasswordPolicy, None::<crate::iam::PasswordPolicy>);
                self.cache.remove(&Key::AccountSummary);
            }
            Node::SamlProvider(name) => {
                let arn = self.saml_provider(name).await?.arn;
                self.check_provider_unused(node, &arn).await?;
                self.iam.delete_saml_provider(&arn).await?;
                self.cache.remove(&Key::SamlProviders);
            }
            Node::OidcProvider(url) => {
                let arn = self
                    .oidc_arn(url)
                    .await?
                    .ok_or_else(|| IamError::no_such_entity(node.path()))?;
                self.check_provider_unused(node, &arn).await?;
                self.iam.delete_oidc_provider(&arn).await?;
                self.cache.remove(&Key::OidcProviders);
            }
            Node::AccountAlias => {
                for alias in self.iam.list_account_aliases().await? {
                    self.iam.delete_account_alias(&alias).await?;
                }
                self.cache.insert(Key::Aliases, Vec::<String>::new());
            }
            _ => {
                return Err(not_permitted(format!(
                    "{} is part of its IAM entity and cannot be deleted",
                    node.path()
                )))
            }
        }
        self.edits.drop_saved(node);
        Ok(())
    }

    /// rm policies/X.json is refused while the policy is attached anywhere.
    async fn check_unattached(&self, name: &str) -> Result<ManagedPolicy> {
        let policy = self.policy(PolicyScope::Local, name).await?;
        let users = collect_pages(|m| self.iam.list_entities_for_policy(&policy.arn, m)).await?;
        if !users.is_empty() {
            let names: Vec<String> = users
                .iter()
                .map(|(k, n)| format!("{}/{n}", crate::node::kind_dir(*k)))
                .collect();
            return Err(IamError::new(
                ErrorKind::Busy,
                "PolicyAttached",
                format!(
                    "policy {name} is attached to {}; detach it first",
                    names.join(", ")
                ),
            ));
        }
        Ok(policy)
    }

    /// Deletes a managed policy: its other versions, then the policy;
    /// attachments are checked again (one may have been made since rm).
    async fn delete_managed(&self, name: &str) -> Result<()> {
        let policy = self.check_unattached(name).await?;
        let versions = collect_pages(|m| self.iam.list_policy_versions(&policy.arn, m)).await?;
        for v in versions.iter().filter(|v| !v.is_default) {
            self.iam.delete_policy_version(&policy.arn, &v.id).await?;
        }
        self.iam.delete_policy(&policy.arn).await?;
        self.edit_policies(|list| list.retain(|p| p.name != name));
        self.cache.remove(&Key::Versions(name.into()));
        Ok(())
    }

    /// ln -s: attaches a policy, adds a user to a group, or makes a scratch link.
    pub async fn symlink(&self, dir: &Node, name: &str, target: &str) -> Result<Node> {
        self.check_mutable(&format!("{}/{name}", dir.path()))?;
        self.check_not_service_linked(dir).await?;
        if let Some(link @ (Node::Boundary(..) | Node::DefaultVersion(_))) = dir.child(name) {
            return self.set_link(&link, target).await;
        }
        if let Node::EntityDir(Kind::Group, group) = dir {
            if name == Node::Boundary(Kind::Group, group.clone()).name() {
                return Err(invalid(format!(
                    "{}/{name}: IAM groups have no permissions boundary (users and roles do)",
                    dir.path()
                )));
            }
        }
        let mut parts = target.trim_end_matches('/').rsplit('/');
        let last = parts.next().unwrap_or_default();
        let folder = parts.next().unwrap_or_default();
        let expect = |want: &str, what: &str| -> Result<()> {
            if name != want {
                return Err(invalid(format!(
                    "{}/{name}: the link must be named {want}, after the {what} it points to",
                    dir.path()
                )));
            }
            Ok(())
        };
        match dir {
            Node::AttachedDir(kind, entity) => {
                let scope = match folder {
                    "policies" => PolicyScope::Local,
                    "aws-policies" => PolicyScope::Aws,
                    _ => {
                        return Err(invalid(format!(
                            "{target}: attach with a link to policies/<Name>.json or aws-policies/<Name>.json"
                        )))
                    }
                };
                let policy_name = last.strip_suffix(JSON).unwrap_or(last);
                expect(policy_name, "policy")?;
                let policy = self.policy(scope, policy_name).await?;
                self.iam.attach_policy(*kind, entity, &policy.arn).await?;
                self.attachments_changed(*kind, entity, &policy.name, &policy.arn);
                Ok(Node::Attached(*kind, entity.clone(), name.into()))
            }
            Node::AttachmentsRoot(_) | Node::AttachmentsDir(..) | Node::AttachmentsKindDir(..) => {
                Err(not_permitted(format!(
                    "{}/{name}: this folder shows attachments; attach with a link in <users|groups|roles>/<Name>/attached/",
                    dir.path()
                )))
            }
            Node::InstanceProfileRoles(profile) => {
                if folder != kind_dir(Kind::Role) {
                    return Err(invalid(format!(
                        "{target}: an instance profile holds a role; link to ../../../roles/<Name>"
                    )));
                }
                expect(last, "role")?;
                self.put_role_in_profile(profile, last).await?;
                Ok(Node::InstanceProfileRole(profile.clone(), name.into()))
            }
            Node::RoleInstanceProfiles(role) => {
                if folder != Node::InstanceProfilesDir.name() {
                    return Err(invalid(format!(
                        "{target}: link to ../../../instance-profiles/<Name>"
                    )));
                }
                expect(last, "instance profile")?;
                self.put_role_in_profile(last, role).await?;
                Ok(Node::RoleInstanceProfile(role.clone(), name.into()))
            }
            Node::LinksDir(kind, entity) => {
                let (want_folder, other_kind) = if *kind == Kind::User {
                    ("groups", Kind::Group)
                } else {
                    ("users", Kind::User)
                };
                if folder != want_folder {
                    return Err(invalid(format!(
                        "{target}: link to ../../../{want_folder}/<Name>"
                    )));
                }
                expect(last, other_kind.api())?;
                let (user, group) = if *kind == Kind::User {
                    (entity.as_str(), last)
                } else {
                    (last, entity.as_str())
                };
                self.iam.add_user_to_group(user, group).await?;
                self.cache.remove(&Key::Links(Kind::User, user.into()));
                self.cache.remove(&Key::Links(Kind::Group, group.into()));
                Ok(Node::Link(*kind, entity.clone(), name.into()))
            }
            _ => {
                self.scratch
                    .create(dir, name, ScratchFile::new(0o777, Some(target.into())))?;
                Ok(Node::ScratchLink(Box::new(dir.clone()), name.into()))
            }
        }
    }

    /// mv. Returns the node that moved and the node now at the new name.
    pub async fn rename(
        &self,
        dir: &Node,
        name: &str,
        new_dir: &Node,
        new_name: &str,
    ) -> Result<(Node, Node)> {
        let from = self.lookup(dir, name).await?;
        let to = self.rename_node(&from, new_dir, new_name).await?;
        Ok((from, to))
    }

    async fn rename_node(&self, from: &Node, new_dir: &Node, new_name: &str) -> Result<Node> {
        let dir = &from.parent_and_name().map(|(d, _)| d).unwrap_or(Node::Root);
        let scratch_target = |is_link: bool| {
            let d = Box::new(new_dir.clone());
            if is_link {
                Node::ScratchLink(d, new_name.into())
            } else {
                Node::Scratch(d, new_name.into())
            }
        };
        match from {
            Node::Scratch(d, n) | Node::ScratchLink(d, n) => {
                if let Some(link @ (Node::Boundary(..) | Node::DefaultVersion(_))) =
                    new_dir.child(new_name)
                {
                    // `ln -sfn`: a new link made aside, renamed over the old.
                    let target =
                        self.scratch.get(d, n).and_then(|f| f.link).ok_or_else(|| {
                            invalid(format!("{}: not a symbolic link", from.path()))
                        })?;
                    self.check_mutable(&link.path())?;
                    self.check_not_service_linked(&link).await?;
                    let node = self.set_link(&link, &target).await?;
                    self.scratch.remove(d, n)?;
                    return Ok(node);
                }
                if let Some(target) = new_dir.child(new_name) {
                    // A name IAM owns that no save can change (user.json, a user).
                    if !target.is_editable() && self.check_exists(&target).await.is_ok() {
                        return Err(IamError::new(
                            ErrorKind::AccessDenied,
                            "ReadOnlyFile",
                            format!(
                                "{} is read-only: IAM does not let it be replaced",
                                target.path()
                            ),
                        ));
                    }
                }
                if let Some(doc) = document_node(new_dir, new_name) {
                    // A temp file renamed over a document: this is the save
                    // (over a name rm removed, a save of the same policy).
                    self.check_writable(&doc)?;
                    let removed_at = self.edits.renamed_over(&doc);
                    let file = self
                        .scratch
                        .get(d, n)
                        .ok_or_else(|| IamError::no_such_entity(from.path()))?;
                    let draft: DraftRef = Arc::new(Mutex::new(Draft {
                        data: file.data,
                        dirty: true,
                        ..Draft::default()
                    }));
                    if let Err(e) = self.commit(&doc, &draft).await {
                        // A refused rename changes nothing: an rm before it stands.
                        self.edits.rename_refused(&doc, removed_at);
                        return Err(e);
                    }
                    self.scratch.remove(d, n)?;
                    return Ok(doc);
                }
                let file = self
                    .scratch
                    .take(d, n)
                    .ok_or_else(|| IamError::no_such_entity(from.path()))?;
                let is_link = file.link.is_some();
                self.scratch.put(new_dir, new_name, file);
                Ok(scratch_target(is_link))
            }
            doc if doc.is_editable() && document_node(new_dir, new_name).is_none() => {
                // An editor's backup step: the content moves to the scratch
                // name and the document's name is empty until it is written.
                let content: Content = self.read(doc).await?;
                let mut file = ScratchFile::new(0o644, None);
                file.data = content.to_vec();
                self.scratch.put(new_dir, new_name, file);
                self.edits
                    .backed_up(doc, (new_dir.clone(), new_name.to_string()));
                Ok(scratch_target(false))
            }
            Node::EntityDir(kind @ (Kind::User | Kind::Group), entity) if new_dir == dir => {
                self.check_mutable(&from.path())?;
                policy::check_name(new_name, NameRule::entity(*kind))?;
                if self.lookup(new_dir, new_name).await.is_ok() {
                    return Err(IamError::new(
                        ErrorKind::EntityAlreadyExists,
                        "EntityAlreadyExists",
                        format!(
                            "{}/{new_name} exists; IAM cannot rename onto it",
                            new_dir.path()
                        ),
                    ));
                }
                self.iam.rename_entity(*kind, entity, new_name).await?;
                // Names appear in links across the tree: start afresh.
                self.cache.clear();
                Ok(Node::EntityDir(*kind, new_name.into()))
            }
            Node::EntityDir(Kind::Role, _) | Node::Policy(..) => Err(not_permitted(format!(
                "{}: IAM cannot rename roles or managed policies; create a new one instead",
                from.path()
            ))),
            _ => Err(not_permitted(format!(
                "{} cannot be renamed to {}/{new_name}",
                from.path(),
                new_dir.path()
            ))),
        }
    }

    /// An attachment came or went: both ends' listings, and the policy's
    /// attachment count, are IAM's to tell again.
    fn attachments_changed(&self, kind: Kind, entity: &str, policy: &str, arn: &str) {
        let scope = if crate::iam::is_aws_managed_arn(arn) {
            PolicyScope::Aws
        } else {
            PolicyScope::Local
        };
        self.cache.remove(&Key::Attached(kind, entity.into()));
        self.cache.remove(&Key::Policies(scope));
        self.cache
            .remove(&Key::PolicyEntities(scope, policy.into()));
    }

    /// AddRoleToInstanceProfile, after the local check that the profile
    /// is empty: IAM allows one role in an instance profile.
    async fn put_role_in_profile(&self, profile: &str, role: &str) -> Result<()> {
        let held = self.listed_instance_profile(profile).await?;
        if let Some(other) = held.roles.first() {
            return Err(IamError::new(
                ErrorKind::LimitExceeded,
                "LimitExceeded",
                format!(
                    "instance-profiles/{profile} already holds role {other}; IAM allows one role in an instance profile (rm instance-profiles/{profile}/roles/{other} first)"
                ),
            ));
        }
        self.entity(Kind::Role, role).await?;
        self.iam.add_role_to_instance_profile(profile, role).await?;
        self.cache.remove(&Key::InstanceProfiles);
        self.cache.remove(&Key::InstanceProfile(profile.into()));
        Ok(())
    }

    /// rmdir instance-profiles/P: only when no role is in it.
    async fn remove_instance_profile(&self, node: &Node, profile: &str) -> Result<()> {
        let held = self.listed_instance_profile(profile).await?;
        if !held.roles.is_empty() {
            return Err(IamError::new(
                ErrorKind::NotEmpty,
                "NotEmpty",
                format!("{} still has role {}", node.path(), held.roles.join(", ")),
            ));
        }
        let editors_files = self.scratch.names_within(node);
        if !editors_files.is_empty() {
            return Err(IamError::new(
                ErrorKind::NotEmpty,
                "NotEmpty",
                format!(
                    "{} still has editors' files ({})",
                    node.path(),
                    editors_files.join(", ")
                ),
            ));
        }
        self.iam.delete_instance_profile(profile).await?;
        self.cache.remove(&Key::InstanceProfiles);
        self.cache.remove(&Key::InstanceProfile(profile.into()));
        Ok(())
    }

    /// `ln -s` (or `ln -sfn`) of a link IAM holds one of: an entity's
    /// permissions boundary, a policy's default version.
    async fn set_link(&self, link: &Node, target: &str) -> Result<Node> {
        match link {
            Node::Boundary(kind, entity) => {
                let arn = self.boundary_policy(target).await?;
                self.iam
                    .put_permissions_boundary(*kind, entity, &arn)
                    .await?;
                self.edit_entity(*kind, entity, |e| {
                    e.permissions_boundary = Some(crate::model::PermissionsBoundary {
                        kind: "PermissionsBoundaryPolicy".into(),
                        arn,
                    })
                });
            }
            Node::DefaultVersion(policy) => {
                let id = target
                    .strip_prefix("./")
                    .unwrap_or(target)
                    .strip_suffix(JSON)
                    .filter(|id| is_version_id(id))
                    .ok_or_else(|| {
                        invalid(format!(
                            "{}: link to a version file in the same folder, such as v2.json (not {target})",
                            link.path()
                        ))
                    })?;
                let version = self.version(policy, id).await?;
                if !version.is_default {
                    let arn = self.policy(PolicyScope::Local, policy).await?.arn;
                    self.iam.set_default_policy_version(&arn, id).await?;
                    self.cache.remove(&Key::Versions(policy.clone()));
                    self.cache.remove(&Key::Policies(PolicyScope::Local));
                    self.edits
                        .drop_saved(&Node::Policy(PolicyScope::Local, policy.clone()));
                }
            }
            _ => {
                return Err(not_permitted(format!(
                    "{} is not a link iamfs can set",
                    link.path()
                )))
            }
        }
        Ok(link.clone())
    }

    /// The ARN of the managed policy a boundary link points to: a file in
    /// policies/ or aws-policies/.
    async fn boundary_policy(&self, target: &str) -> Result<String> {
        let mut parts = target.trim_end_matches('/').rsplit('/');
        let file = parts.next().unwrap_or_default();
        let scope = match parts.next() {
            Some("policies") => PolicyScope::Local,
            Some("aws-policies") => PolicyScope::Aws,
            _ => {
                return Err(invalid(format!(
                    "{target}: a boundary is a managed policy; link to ../../policies/<Name>.json or ../../aws-policies/<Name>.json"
                )))
            }
        };
        let name = file
            .strip_suffix(JSON)
            .ok_or_else(|| invalid(format!("{target}: a policy file's name ends in {JSON}")))?;
        Ok(self.policy(scope, name).await?.arn)
    }

    /// rm policy-versions/P/vN.json: DeletePolicyVersion, never the default.
    async fn delete_version(&self, policy: &str, id: &str) -> Result<()> {
        let version = self.version(policy, id).await?;
        if version.is_default {
            return Err(IamError::new(
                ErrorKind::Busy,
                "DeleteConflict",
                format!(
                    "policy-versions/{policy}/{id}{JSON} is the default version; make another the default first (ln -sfn vN{JSON} default)"
                ),
            ));
        }
        let arn = self.policy(PolicyScope::Local, policy).await?.arn;
        self.iam.delete_policy_version(&arn, id).await?;
        self.cache.remove(&Key::Versions(policy.into()));
        self.cache.remove(&Key::PolicyDoc(arn, id.into()));
        Ok(())
    }
}

fn scratch_key(node: &Node) -> Result<(&Node, &str)> {
    match node {
        Node::Scratch(dir, name) | Node::ScratchLink(dir, name) => Ok((dir, name)),
        _ => Err(not_permitted(format!(
            "{} is not a scratch file",
            node.path()
        ))),
    }
}
