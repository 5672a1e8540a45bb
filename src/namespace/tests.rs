use std::time::Duration;

use super::*;
use crate::iam::memory::MemoryIam;
use crate::iam::Operation;
use crate::namespace::write::Created;

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn settings() -> Settings {
    Settings::for_tests(Duration::from_secs(60))
}

/// An account with `n` of each principal, inline and managed policies.
fn account(n: usize) -> MemoryIam {
    let iam = MemoryIam::default();
    for i in 0..n {
        iam.add_policy(&format!("managed{i}"), "/", DOC);
        iam.add_entity(Kind::User, &format!("user{i}"))
            .add_entity(Kind::Group, &format!("group{i}"))
            .add_entity(Kind::Role, &format!("role{i}"));
        for kind in Kind::ALL {
            let name = format!("{}{i}", kind.api().to_lowercase());
            iam.put_inline(kind, &name, "inline-a", DOC)
                .put_inline(kind, &name, "inline-b", DOC)
                .attach(kind, &name, &format!("managed{i}"));
        }
        iam.add_to_group(&format!("user{i}"), &format!("group{i}"));
        iam.add_access_key(&format!("user{i}"), &format!("AKIA{i:016}"));
    }
    iam
}

fn namespace(iam: MemoryIam) -> (Arc<MemoryIam>, Namespace) {
    let iam = Arc::new(iam);
    let ns = Namespace::new(iam.clone(), settings());
    (iam, ns)
}

async fn names(ns: &Namespace, node: &Node) -> Vec<String> {
    ns.children(node)
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Reads every file below `node` as `grep -r` does: list, look up, stat, read.
async fn walk(ns: &Namespace, node: Node) -> usize {
    let mut files = 0;
    let mut stack = vec![node];
    while let Some(dir) = stack.pop() {
        for (name, _) in ns.children(&dir).await.unwrap() {
            let child = ns.lookup(&dir, &name).await.unwrap();
            let attr = ns.attr(&child).await.unwrap();
            match attr.kind {
                FileKind::Dir => stack.push(child),
                FileKind::File if !child.is_volatile() => {
                    assert_eq!(ns.read(&child).await.unwrap().len() as u64, attr.size);
                    files += 1;
                }
                _ => {}
            }
        }
    }
    files
}

#[tokio::test]
async fn nothing_is_fetched_until_asked() {
    let (_, ns) = namespace(account(3));
    assert_eq!(names(&ns, &Node::Root).await.len(), 12);
    assert_eq!(ns.api_calls().total(), 0);
}

#[tokio::test]
async fn second_readdir_makes_no_call() {
    let (_, ns) = namespace(account(5));
    let roles = Node::KindDir(Kind::Role);
    let first = names(&ns, &roles).await;
    let after_first = ns.api_calls().total();
    assert!(after_first > 0);
    for (name, _) in ns.children(&roles).await.unwrap() {
        let node = ns.lookup(&roles, &name).await.unwrap();
        ns.attr(&node).await.unwrap();
    }
    assert_eq!(names(&ns, &roles).await, first);
    assert_eq!(
        ns.api_calls().total(),
        after_first,
        "{:?}",
        ns.api_calls().snapshot()
    );
}

#[tokio::test]
async fn every_list_follows_markers_across_pages() {
    // page_size 3 (IAM returning fewer than asked) over 10 items.
    let iam = account(10);
    for i in 0..10 {
        iam.put_inline(Kind::Role, "role0", &format!("extra{i}"), DOC)
            .attach(Kind::Role, "role0", &format!("managed{i}"));
    }
    for i in 1..10 {
        iam.add_to_group("user0", &format!("group{i}"));
    }
    for i in 1..10 {
        iam.add_to_group(&format!("user{i}"), "group0");
    }
    iam.add_policy("AWSThing", "/aws/", DOC);
    let (_, ns) = namespace(iam);
    for kind in Kind::ALL {
        assert_eq!(names(&ns, &Node::KindDir(kind)).await.len(), 10);
    }
    let role0 = |n: &str| {
        Node::EntityDir(Kind::Role, "role0".into())
            .child(n)
            .unwrap()
    };
    assert_eq!(names(&ns, &role0("policies")).await.len(), 12);
    assert_eq!(names(&ns, &role0("attached")).await.len(), 11);
    let user0 = Node::EntityDir(Kind::User, "user0".into());
    assert_eq!(names(&ns, &user0.child("groups").unwrap()).await.len(), 10);
    let group0 = Node::EntityDir(Kind::Group, "group0".into());
    assert_eq!(
        names(&ns, &group0.child("members").unwrap()).await.len(),
        10
    );
    assert_eq!(
        names(&ns, &Node::PoliciesDir(PolicyScope::Local))
            .await
            .len(),
        10
    );
    assert_eq!(
        names(&ns, &Node::PoliciesDir(PolicyScope::Aws)).await,
        ["AWSThing.json"]
    );
    let calls = ns.api_calls();
    assert_eq!(calls.get(Operation::ListRoles), 4);
    assert_eq!(calls.get(Operation::ListRolePolicies), 4);
    assert_eq!(calls.get(Operation::ListAttachedRolePolicies), 4);
    assert_eq!(calls.get(Operation::ListGroupsForUser), 4);
    assert_eq!(calls.get(Operation::GetGroup), 4);
    assert_eq!(calls.get(Operation::ListPolicies), 4 + 1);
}

#[tokio::test]
async fn url_encoded_and_plain_documents_read_alike() {
    let mut encoded = account(1);
    encoded.url_encode = true;
    let mut plain = account(1);
    plain.url_encode = false;
    let (_, a) = namespace(encoded);
    let (_, b) = namespace(plain);
    for node in [
        Node::Inline(Kind::Role, "role0".into(), "inline-a".into()),
        Node::Policy(PolicyScope::Local, "managed0".into()),
        Node::TrustPolicy("role0".into()),
        Node::EntityJson(Kind::Role, "role0".into()),
    ] {
        let (x, y) = (a.read(&node).await.unwrap(), b.read(&node).await.unwrap());
        assert_eq!(*x, *y, "{}", node.path());
        let text = String::from_utf8(x.to_vec()).unwrap();
        assert!(!text.contains("%22"), "{text}");
        assert!(text.ends_with("}\n"));
    }
    let doc = a
        .read(&Node::Policy(PolicyScope::Local, "managed0".into()))
        .await
        .unwrap();
    assert_eq!(
        doc.to_vec(),
        document::render(&serde_json::from_str(DOC).unwrap())
    );
}

#[tokio::test]
async fn whole_account_walk_costs_pages_not_entities() {
    // IAM-sized pages: 300 principals of each kind and 300 policies.
    let n = 300;
    let mut iam = account(n);
    iam.page_size = 100;
    let (_, ns) = namespace(iam);
    let files = walk(&ns, Node::KindDir(Kind::Role)).await;
    assert_eq!(files, n * 6); // role.json, trust, settings, tags, 2 inline
    walk(&ns, Node::PoliciesDir(PolicyScope::Local)).await;
    let calls = ns.api_calls();
    assert!(calls.get(Operation::GetAccountAuthorizationDetails) > 0);
    // Everything after the threshold comes from the bulk read.
    assert!(
        calls.get(Operation::GetRole) < BULK_THRESHOLD as u64 + 1,
        "{:?}",
        calls.snapshot()
    );
    assert!(calls.get(Operation::GetRolePolicy) < 2 * BULK_THRESHOLD as u64 + 1);
    assert!(calls.get(Operation::GetPolicyVersion) < BULK_THRESHOLD as u64 + 1);
    // The naive way is one call per file (1500 here); this is pages of GAAD
    // (12) and of the listings, plus the few calls before the bulk read.
    assert!(calls.total() <= 50, "{:?}", calls.snapshot());
}

#[tokio::test]
async fn a_walk_reads_the_details_of_what_it_walks_only() {
    let mut iam = account(20);
    iam.page_size = 100;
    let (iam, ns) = namespace(iam);
    walk(&ns, Node::KindDir(Kind::Role)).await;
    assert_eq!(*iam.details_asked.lock(), [DetailsFilter::Roles]);
    walk(&ns, Node::PoliciesDir(PolicyScope::Local)).await;
    walk(&ns, Node::KindDir(Kind::Group)).await;
    assert_eq!(
        *iam.details_asked.lock(),
        [
            DetailsFilter::Roles,
            DetailsFilter::LocalManagedPolicies,
            DetailsFilter::Groups
        ]
    );
    // The groups' read held every user's groups: members need no more calls.
    let before = ns.api_calls().total();
    let members = ns
        .children(&Node::LinksDir(Kind::Group, "group7".into()))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(ns.api_calls().total(), before);
}

#[tokio::test]
async fn bulk_read_merges_list_only_fields() {
    let (_, ns) = namespace(account(6));
    walk(&ns, Node::KindDir(Kind::Role)).await;
    let role = ns
        .read(&Node::EntityJson(Kind::Role, "role5".into()))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&role).unwrap();
    assert_eq!(v["MaxSessionDuration"], 3600);
    let members = ns
        .children(&Node::LinksDir(Kind::Group, "group5".into()))
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
}

#[tokio::test]
async fn denied_bulk_read_falls_back_to_concurrent_calls() {
    let mut iam = account(40);
    iam.deny_account_details = true;
    iam.latency = Duration::from_millis(20);
    let (_, ns) = namespace(iam);
    let started = std::time::Instant::now();
    let files = walk(&ns, Node::KindDir(Kind::Role)).await;
    let elapsed = started.elapsed();
    let calls = ns.api_calls();
    assert_eq!(calls.get(Operation::GetAccountAuthorizationDetails), 1);
    // 40 roles x (GetRole + ListRolePolicies + 2 GetRolePolicy + ListAttached) = 200
    // calls of 20 ms: sequentially 4 s; the fan-out runs FAN_OUT at once.
    let sequential = Duration::from_millis(20) * calls.total() as u32;
    assert!(elapsed * 3 < sequential, "{elapsed:?} vs {sequential:?}");
    assert_eq!(files, 40 * 6);
}

#[tokio::test]
async fn refresh_shows_changes_made_elsewhere() {
    let (iam, ns) = namespace(account(2));
    let roles = Node::KindDir(Kind::Role);
    assert_eq!(names(&ns, &roles).await.len(), 2);
    iam.add_entity(Kind::Role, "newrole");
    assert_eq!(names(&ns, &roles).await.len(), 2, "cached within the TTL");
    ns.refresh();
    assert_eq!(names(&ns, &roles).await.len(), 3);
    assert!(ns.lookup(&roles, "newrole").await.is_ok());
}

#[tokio::test]
async fn missing_names_are_no_such_entity() {
    let (_, ns) = namespace(account(1));
    let err = ns
        .lookup(&Node::KindDir(Kind::Role), "nosuch")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSuchEntity);
    let inline = Node::InlineDir(Kind::Role, "role0".into());
    assert_eq!(
        ns.lookup(&inline, "nosuch.json").await.unwrap_err().kind,
        ErrorKind::NoSuchEntity
    );
    assert_eq!(
        ns.lookup(&inline, "inline-a").await.unwrap_err().kind,
        ErrorKind::NoSuchEntity
    );
    let pols = Node::PoliciesDir(PolicyScope::Local);
    assert_eq!(
        ns.lookup(&pols, "nope.json").await.unwrap_err().kind,
        ErrorKind::NoSuchEntity
    );
}

#[tokio::test]
async fn links_and_attachments_resolve_to_their_folders() {
    let iam = account(1);
    iam.add_policy("ReadOnlyAccess", "/aws/", DOC)
        .attach(Kind::Role, "role0", "ReadOnlyAccess");
    let (_, ns) = namespace(iam);
    let target = |node: Node| {
        let ns = &ns;
        async move { ns.readlink(&node).await.unwrap() }
    };
    assert_eq!(
        target(Node::Attached(
            Kind::Role,
            "role0".into(),
            "managed0".into()
        ))
        .await,
        "../../../policies/managed0.json"
    );
    assert_eq!(
        target(Node::Attached(
            Kind::Role,
            "role0".into(),
            "ReadOnlyAccess".into()
        ))
        .await,
        "../../../aws-policies/ReadOnlyAccess.json"
    );
    assert_eq!(
        target(Node::Link(Kind::User, "user0".into(), "group0".into())).await,
        "../../../groups/group0"
    );
    assert_eq!(
        target(Node::Link(Kind::Group, "group0".into(), "user0".into())).await,
        "../../../users/user0"
    );
}

#[tokio::test]
async fn access_keys_and_tags_render_without_secrets() {
    let iam = account(1);
    iam.set_tags(Kind::User, "user0", &[("team", "infra"), ("env", "prod")]);
    let (_, ns) = namespace(iam);
    let keys = ns.read(&Node::AccessKeys("user0".into())).await.unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&keys).unwrap();
    assert_eq!(keys[0]["AccessKeyId"], "AKIA0000000000000000");
    assert_eq!(keys[0]["Status"], "Active");
    assert!(keys[0].get("SecretAccessKey").is_none());
    let tags = ns
        .read(&Node::Tags(Kind::User, "user0".into()))
        .await
        .unwrap();
    assert_eq!(
        &tags[..],
        b"{\n  \"team\": \"infra\",\n  \"env\": \"prod\"\n}\n"
    );
}

#[tokio::test]
async fn sizes_and_times_match_content_and_iam_dates() {
    let (_, ns) = namespace(account(2));
    let policy = Node::Policy(PolicyScope::Local, "managed1".into());
    let attr = ns.attr(&policy).await.unwrap();
    assert_eq!(attr.size, ns.read(&policy).await.unwrap().len() as u64);
    let listed = ns.policies(PolicyScope::Local).await.unwrap();
    assert_eq!(
        attr.mtime,
        listed
            .iter()
            .find(|p| p.name == "managed1")
            .unwrap()
            .update_date
    );
    let role = ns.entity(Kind::Role, "role1").await.unwrap();
    let dir = ns
        .attr(&Node::EntityDir(Kind::Role, "role1".into()))
        .await
        .unwrap();
    assert_eq!(dir.mtime, role.create_date);
    assert_eq!(dir.perm, 0o755);
}

#[tokio::test]
async fn concurrent_reads_of_one_document_make_one_call() {
    let mut iam = account(1);
    iam.latency = Duration::from_millis(30);
    let (_, ns) = namespace(iam);
    let ns = Arc::new(ns);
    let node = Node::Inline(Kind::User, "user0".into(), "inline-a".into());
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (ns, node) = (ns.clone(), node.clone());
            tokio::spawn(async move { ns.read(&node).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(ns.api_calls().get(Operation::GetUserPolicy), 1);
}

#[tokio::test]
async fn credentials_resolve_by_name_but_are_not_listed() {
    let (iam, ns) = namespace(account(1));
    let role = Node::EntityDir(Kind::Role, "role0".into());
    let listed = names(&ns, &role).await;
    assert!(
        !listed.iter().any(|n| n == "credentials" || n == "env"),
        "{listed:?}"
    );
    let creds = ns.lookup(&role, "credentials").await.unwrap();
    assert_eq!(ns.attr(&creds).await.unwrap().perm, 0o400);
    let json: serde_json::Value = serde_json::from_slice(&ns.read(&creds).await.unwrap()).unwrap();
    assert_eq!(json["Version"], 1);
    assert!(json["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    // Cached: the second read, and the env file, make no AssumeRole.
    ns.read(&creds).await.unwrap();
    let env = ns.read(&Node::Env("role0".into())).await.unwrap();
    assert!(String::from_utf8(env.to_vec())
        .unwrap()
        .starts_with("export AWS_ACCESS_KEY_ID='ASIA"));
    assert_eq!(ns.api_calls().get(Operation::AssumeRole), 1);
    let (session, secs) = iam.last_assume.lock().clone().unwrap();
    assert_eq!((session.as_str(), secs), ("iamfs-tester", 3600));
}

#[tokio::test]
async fn concurrent_first_reads_assume_the_role_once() {
    let mut iam = account(1);
    iam.latency = Duration::from_millis(20);
    let (_, ns) = namespace(iam);
    let ns = Arc::new(ns);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let ns = ns.clone();
            tokio::spawn(async move {
                ns.read(&Node::Credentials("role0".into()))
                    .await
                    .unwrap()
                    .to_vec()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(ns.api_calls().get(Operation::AssumeRole), 1);
}

#[tokio::test]
async fn role_sessions_chain_for_at_most_an_hour() {
    let mut iam = account(1);
    iam.caller_arn = "arn:aws:sts::123456789012:assumed-role/admin/me".into();
    let iam = Arc::new(iam);
    let mut s = settings();
    s.session_duration = 7200;
    let ns = Namespace::new(iam.clone(), s);
    ns.read(&Node::Credentials("role0".into())).await.unwrap();
    assert_eq!(iam.last_assume.lock().clone().unwrap().1, 3600);
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_access_denied() {
    let (iam, ns) = namespace(account(1));
    // Listed (cached), then gone from STS's view.
    ns.entity(Kind::Role, "role0").await.unwrap();
    iam.remove_entity(Kind::Role, "role0");
    let err = ns
        .read(&Node::Credentials("role0".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    let err = ns
        .lookup(&Node::KindDir(Kind::Role), "nosuch")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSuchEntity);
}

// ---- writing ----------------------------------------------------------------

const DOC2: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;

async fn save(ns: &Namespace, node: &Node, bytes: &str, truncate: bool) -> Result<()> {
    let draft = ns.open_document(node, truncate).await?;
    Namespace::draft_truncate(node, &draft, 0).unwrap();
    Namespace::draft_write(node, &draft, 0, bytes.as_bytes()).unwrap();
    ns.commit(node, &draft).await
}

fn iam_writes(ns: &Namespace) -> u64 {
    ns.api_calls()
        .snapshot()
        .iter()
        .filter(|(op, _)| {
            [
                "Put", "Create", "Delete", "Update", "Tag", "Untag", "Attach", "Detach", "Add",
                "Remove", "Set",
            ]
            .iter()
            .any(|p| op.name().starts_with(p))
        })
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test]
async fn saving_a_managed_policy_makes_a_default_version_and_reads_back_at_once() {
    let (iam, ns) = namespace(account(1));
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    save(&ns, &node, DOC2, true).await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::CreatePolicyVersion), 1);
    assert_eq!(&ns.read(&node).await.unwrap()[..], DOC2.as_bytes());
    let raw = iam
        .get_policy_version("arn:aws:iam::123456789012:policy/managed0", "v2")
        .await
        .unwrap();
    assert!(document::decode_policy(&raw)["Statement"][0]["Effect"] == "Deny");
}

#[tokio::test]
async fn the_sixth_version_replaces_the_oldest_non_default_one() {
    let (_, ns) = namespace(account(1));
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    for action in ["s3:A", "s3:B", "s3:C", "s3:D", "s3:E", "s3:F"] {
        let doc = DOC.replace("s3:GetObject", action);
        save(&ns, &node, &doc, true).await.unwrap();
    }
    assert_eq!(ns.api_calls().get(Operation::CreatePolicyVersion), 6);
    assert_eq!(ns.api_calls().get(Operation::DeletePolicyVersion), 2);
    let text = String::from_utf8(ns.read(&node).await.unwrap().to_vec()).unwrap();
    assert!(text.contains("s3:F"));
}

#[tokio::test]
async fn a_semantically_equal_save_makes_no_call() {
    let (_, ns) = namespace(account(1));
    let pretty = String::from_utf8(document::render(&serde_json::from_str(DOC).unwrap())).unwrap();
    for node in [
        Node::Policy(PolicyScope::Local, "managed0".into()),
        Node::Inline(Kind::Role, "role0".into(), "inline-a".into()),
    ] {
        save(&ns, &node, DOC, true).await.unwrap();
        save(&ns, &node, &pretty, true).await.unwrap();
    }
    // Action as a one-element list means the same as the string.
    let listy = DOC.replace(r#""s3:GetObject""#, r#"["s3:GetObject"]"#);
    save(
        &ns,
        &Node::Policy(PolicyScope::Local, "managed0".into()),
        &listy,
        true,
    )
    .await
    .unwrap();
    assert_eq!(iam_writes(&ns), 0, "{:?}", ns.api_calls());
}

#[tokio::test]
async fn a_refused_save_changes_nothing_and_reads_as_iam_has_it() {
    let (_, ns) = namespace(account(1));
    let node = Node::Inline(Kind::User, "user0".into(), "inline-a".into());
    let before = ns.read(&node).await.unwrap().to_vec();
    for bad in [
        "{not json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"s3:*","Resource":"*"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#,
        "",
    ] {
        let err = save(&ns, &node, bad, true).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}: {err}");
        assert_eq!(ns.read(&node).await.unwrap().to_vec(), before);
    }
    let trust = Node::TrustPolicy("role0".into());
    let err = save(&ns, &trust, DOC, true).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::InvalidInput,
        "a trust policy needs a Principal"
    );
    assert_eq!(iam_writes(&ns), 0);
}

#[tokio::test]
async fn a_flush_after_a_failed_fsync_reports_the_error_again_without_a_call() {
    let (_, ns) = namespace(account(1));
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    let draft = ns.open_document(&node, true).await.unwrap();
    Namespace::draft_write(&node, &draft, 0, b"{").unwrap();
    assert!(ns.commit(&node, &draft).await.is_err());
    assert!(ns.commit(&node, &draft).await.is_err());
    assert_eq!(iam_writes(&ns), 0);
}

#[tokio::test]
async fn new_documents_are_created_and_invalid_names_refused() {
    let (_, ns) = namespace(account(1));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    let Created::Document(node, draft) = ns.create(&dir, "fresh.json", 0o644).await.unwrap() else {
        panic!("a .json name in policies/ is a document");
    };
    assert!(
        ns.lookup(&dir, "fresh.json").await.is_ok(),
        "visible while open"
    );
    Namespace::draft_write(&node, &draft, 0, DOC.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::CreatePolicy), 1);
    assert!(names(&ns, &dir).await.contains(&"fresh.json".to_string()));

    let inline = Node::InlineDir(Kind::Role, "role0".into());
    let Created::Document(node, draft) = ns.create(&inline, "new.json", 0o644).await.unwrap()
    else {
        panic!();
    };
    Namespace::draft_write(&node, &draft, 0, DOC.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::PutRolePolicy), 1);
    let err = ns
        .mkdir(&Node::KindDir(Kind::User), "bad name")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn editor_files_stay_in_memory() {
    let (_, ns) = namespace(account(1));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    for name in ["4913", ".managed0.json.swp", "managed0.json~", "sedX1Y2"] {
        let Created::Scratch(node) = ns.create(&dir, name, 0o600).await.unwrap() else {
            panic!("{name} is scratch");
        };
        ns.scratch_write(&node, 0, b"hello").unwrap();
        assert_eq!(&ns.read(&node).await.unwrap()[..], b"hello");
        assert_eq!(ns.attr(&node).await.unwrap().perm, 0o600);
    }
    assert!(ns.create(&dir, "4913", 0o600).await.is_err(), "O_EXCL");
    for name in ["4913", ".managed0.json.swp", "managed0.json~", "sedX1Y2"] {
        ns.unlink(&dir, name).await.unwrap();
    }
    assert_eq!(iam_writes(&ns), 0);
}

#[tokio::test]
async fn vim_style_backup_rename_then_create_commits_as_an_update() {
    let (_, ns) = namespace(account(1));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    let old = ns.read(&node).await.unwrap().to_vec();
    // rename(X.json, X.json~): content moves, the name is empty, IAM unchanged.
    ns.rename(&dir, "managed0.json", &dir, "managed0.json~")
        .await
        .unwrap();
    assert!(ns.lookup(&dir, "managed0.json").await.is_err());
    let backup = ns.lookup(&dir, "managed0.json~").await.unwrap();
    assert_eq!(ns.read(&backup).await.unwrap().to_vec(), old);
    assert_eq!(iam_writes(&ns), 0);
    // open(X.json, O_WRONLY|O_CREAT) without O_TRUNC, a shorter document.
    let Created::Document(n, draft) = ns.create(&dir, "managed0.json", 0o644).await.unwrap() else {
        panic!();
    };
    let short =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#;
    Namespace::draft_write(&n, &draft, 0, short.as_bytes()).unwrap();
    ns.commit(&n, &draft).await.unwrap();
    ns.unlink(&dir, "managed0.json~").await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::CreatePolicyVersion), 1);
    assert_eq!(ns.api_calls().get(Operation::CreatePolicy), 0);
    assert_eq!(&ns.read(&node).await.unwrap()[..], short.as_bytes());
}

#[tokio::test]
async fn a_temp_file_renamed_over_a_document_is_the_save() {
    let (_, ns) = namespace(account(1));
    let dir = Node::InlineDir(Kind::Group, "group0".into());
    let Created::Scratch(tmp) = ns.create(&dir, "inline-a.json.tmp", 0o644).await.unwrap() else {
        panic!();
    };
    ns.scratch_write(&tmp, 0, b"{broken").unwrap();
    let err = ns
        .rename(&dir, "inline-a.json.tmp", &dir, "inline-a.json")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    assert!(
        ns.lookup(&dir, "inline-a.json.tmp").await.is_ok(),
        "a failed save keeps the temp file"
    );
    ns.scratch_set(&tmp, None, Some(0), None).unwrap();
    ns.scratch_write(&tmp, 0, DOC2.as_bytes()).unwrap();
    ns.rename(&dir, "inline-a.json.tmp", &dir, "inline-a.json")
        .await
        .unwrap();
    assert_eq!(ns.api_calls().get(Operation::PutGroupPolicy), 1);
    assert!(ns.lookup(&dir, "inline-a.json.tmp").await.is_err());
}

#[tokio::test]
async fn tags_are_saved_as_the_difference() {
    let iam = account(1);
    iam.set_tags(
        Kind::Role,
        "role0",
        &[("keep", "1"), ("change", "a"), ("drop", "x")],
    );
    let (iam, ns) = namespace(iam);
    let node = Node::Tags(Kind::Role, "role0".into());
    save(
        &ns,
        &node,
        r#"{"keep": "1", "change": "b", "add": "y"}"#,
        true,
    )
    .await
    .unwrap();
    assert_eq!(ns.api_calls().get(Operation::UntagRole), 1);
    assert_eq!(ns.api_calls().get(Operation::TagRole), 1);
    let fresh = iam
        .get_entity(Kind::Role, "role0")
        .await
        .unwrap()
        .tags
        .unwrap();
    let pairs: Vec<(&str, &str)> = fresh
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(pairs, [("keep", "1"), ("change", "b"), ("add", "y")]);
}

/// Carries out every rm still in its grace.
async fn settle_all(ns: &Namespace) -> Vec<Node> {
    ns.settle_pending_deletes(std::time::Instant::now() + crate::namespace::UNLINK_GRACE)
        .await
}

/// unlink + create + write + close, as `install` and `cp --remove-destination` save.
async fn install(ns: &Namespace, dir: &Node, name: &str, bytes: &[u8]) -> Result<()> {
    ns.unlink(dir, name).await?;
    let Created::Document(node, draft) = ns.create(dir, name, 0o644).await? else {
        panic!("{name} is a document");
    };
    Namespace::draft_write(&node, &draft, 0, bytes).unwrap();
    let result = ns.commit(&node, &draft).await;
    ns.release_draft(&node, &draft);
    result
}

#[tokio::test]
async fn install_is_an_update_that_keeps_the_policy_and_its_versions() {
    let (_, ns) = namespace(account(1));
    let policies = Node::PoliciesDir(PolicyScope::Local);
    install(&ns, &policies, "managed0.json", DOC2.as_bytes())
        .await
        .unwrap();
    let inline = Node::InlineDir(Kind::Role, "role0".into());
    let name = names(&ns, &inline).await[0].clone();
    install(&ns, &inline, &name, DOC2.as_bytes()).await.unwrap();
    let role = Node::EntityDir(Kind::Role, "role0".into());
    install(&ns, &role, "trust-policy.json", TRUST.as_bytes())
        .await
        .unwrap();
    assert!(settle_all(&ns).await.is_empty(), "nothing left to delete");
    let calls = ns.api_calls();
    assert_eq!(calls.get(Operation::CreatePolicyVersion), 1);
    assert_eq!(calls.get(Operation::PutRolePolicy), 1);
    assert_eq!(calls.get(Operation::UpdateAssumeRolePolicy), 1);
    for deleting in [
        Operation::DeletePolicy,
        Operation::CreatePolicy,
        Operation::DeleteRolePolicy,
        Operation::DeletePolicyVersion,
    ] {
        assert_eq!(calls.get(deleting), 0, "{deleting:?}");
    }
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    assert_eq!(&ns.read(&node).await.unwrap()[..], DOC2.as_bytes());
}

#[tokio::test]
async fn rm_deletes_after_its_grace_unless_a_save_replaces_it() {
    let (_, ns) = namespace(account(1));
    let inline = Node::InlineDir(Kind::Role, "role0".into());
    let name = names(&ns, &inline).await[0].clone();
    ns.unlink(&inline, &name).await.unwrap();
    assert!(!names(&ns, &inline).await.contains(&name), "hidden at once");
    assert_eq!(iam_writes(&ns), 0);
    assert!(ns
        .settle_pending_deletes(std::time::Instant::now())
        .await
        .is_empty());
    assert_eq!(settle_all(&ns).await.len(), 1);
    assert_eq!(ns.api_calls().get(Operation::DeleteRolePolicy), 1);
    assert!(!names(&ns, &inline).await.contains(&name));

    // A refused replacement deletes nothing: the old document stays.
    let (_, ns) = namespace(account(1));
    let err = install(&ns, &inline, &name, b"{ not json")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidInput);
    settle_all(&ns).await;
    assert_eq!(iam_writes(&ns), 0);
    assert!(names(&ns, &inline).await.contains(&name));

    // rm then an empty create (touch): the rm goes ahead.
    ns.unlink(&inline, &name).await.unwrap();
    let Created::Document(node, draft) = ns.create(&inline, &name, 0o644).await.unwrap() else {
        panic!();
    };
    ns.commit(&node, &draft).await.unwrap();
    ns.release_draft(&node, &draft);
    settle_all(&ns).await;
    assert_eq!(ns.api_calls().get(Operation::DeleteRolePolicy), 1);

    // rmdir carries out an rm still in its grace before it looks.
    let (_, ns) = namespace(account(1));
    let users = Node::KindDir(Kind::User);
    let user_inline = Node::InlineDir(Kind::User, "user0".into());
    for name in names(&ns, &user_inline).await {
        ns.unlink(&user_inline, &name).await.unwrap();
    }
    let err = ns.rmdir(&users, "user0").await.unwrap_err();
    assert!(!err.message.contains("inline"), "{err}");
    assert!(ns.api_calls().get(Operation::DeleteUserPolicy) > 0);
}

#[tokio::test]
async fn folders_are_removed_only_when_empty_and_attached_policies_are_kept() {
    let (_, ns) = namespace(account(1));
    let users = Node::KindDir(Kind::User);
    let err = ns.rmdir(&users, "user0").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotEmpty);
    assert!(err.message.contains("inline policies"), "{err}");
    // rm of an attached policy returns (install over it is a save), and is
    // refused once its grace has passed: nothing changes, the name is back.
    let policies = Node::PoliciesDir(PolicyScope::Local);
    ns.unlink(&policies, "managed0.json").await.unwrap();
    assert!(ns.lookup(&policies, "managed0.json").await.is_err());
    settle_all(&ns).await;
    assert_eq!(iam_writes(&ns), 0);
    assert!(ns.lookup(&policies, "managed0.json").await.is_ok());
    let errors = String::from_utf8(ns.errors.render()).unwrap();
    assert!(
        errors.contains("EBUSY") && errors.contains("users/user0"),
        "{errors}"
    );

    ns.mkdir(&users, "fresh").await.unwrap();
    let attached = Node::AttachedDir(Kind::User, "fresh".into());
    ns.symlink(&attached, "managed0", "../../../policies/managed0.json")
        .await
        .unwrap();
    ns.symlink(
        &Node::LinksDir(Kind::User, "fresh".into()),
        "group0",
        "../../../groups/group0",
    )
    .await
    .unwrap();
    assert_eq!(
        ns.rmdir(&users, "fresh").await.unwrap_err().kind,
        ErrorKind::NotEmpty
    );
    ns.unlink(&attached, "managed0").await.unwrap();
    ns.unlink(&Node::LinksDir(Kind::Group, "group0".into()), "fresh")
        .await
        .unwrap();
    ns.rmdir(&users, "fresh").await.unwrap();
    assert!(ns.lookup(&users, "fresh").await.is_err());
    let wrong = ns
        .symlink(
            &Node::AttachedDir(Kind::User, "user0".into()),
            "x",
            "../../../policies/managed0.json",
        )
        .await;
    assert_eq!(wrong.unwrap_err().kind, ErrorKind::InvalidInput);
}

#[tokio::test]
async fn roles_and_policies_cannot_be_renamed_but_users_can() {
    let (_, ns) = namespace(account(1));
    let roles = Node::KindDir(Kind::Role);
    assert_eq!(
        ns.rename(&roles, "role0", &roles, "r")
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotPermitted
    );
    let pols = Node::PoliciesDir(PolicyScope::Local);
    assert_eq!(
        ns.rename(&pols, "managed0.json", &pols, "m.json")
            .await
            .unwrap_err()
            .kind,
        ErrorKind::NotPermitted
    );
    let users = Node::KindDir(Kind::User);
    ns.rename(&users, "user0", &users, "renamed").await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::UpdateUser), 1);
    assert!(ns.lookup(&users, "renamed").await.is_ok());
}

#[tokio::test]
async fn read_only_mounts_and_read_only_files_refuse_changes() {
    let iam = Arc::new(account(1));
    let mut s = settings();
    s.read_only = true;
    let ns = Namespace::new(iam.clone(), s);
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    assert_eq!(
        ns.open_document(&node, true).await.unwrap_err().kind,
        ErrorKind::ReadOnly
    );
    assert_eq!(
        ns.mkdir(&Node::KindDir(Kind::User), "x")
            .await
            .unwrap_err()
            .kind,
        ErrorKind::ReadOnly
    );
    let (_, ns) = namespace(account(1));
    let err = ns
        .open_document(&Node::EntityJson(Kind::User, "user0".into()), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
}

#[tokio::test]
async fn concurrent_saves_of_one_document_end_as_one_of_them() {
    let mut iam = account(1);
    iam.latency = Duration::from_millis(5);
    let (iam, ns) = namespace(iam);
    let ns = Arc::new(ns);
    let node = Node::Inline(Kind::Role, "role0".into(), "inline-a".into());
    let docs: Vec<String> = (0..8)
        .map(|i| DOC.replace("s3:GetObject", &format!("s3:Op{i}")))
        .collect();
    let tasks: Vec<_> = docs
        .iter()
        .cloned()
        .map(|doc| {
            let (ns, node) = (ns.clone(), node.clone());
            tokio::spawn(async move { save(&ns, &node, &doc, true).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let raw = iam
        .get_inline_policy(Kind::Role, "role0", "inline-a")
        .await
        .unwrap();
    let stored = document::decode_policy(&raw);
    assert!(docs
        .iter()
        .any(|d| serde_json::from_str::<serde_json::Value>(d).unwrap() == stored));
}

#[tokio::test]
async fn listing_aws_policies_with_sizes_reads_them_in_bulk() {
    let mut iam = account(1);
    iam.page_size = 100;
    for i in 0..300 {
        iam.add_policy(&format!("AwsPolicy{i}"), "/aws/", DOC);
    }
    let (_, ns) = namespace(iam);
    let dir = Node::PoliciesDir(PolicyScope::Aws);
    for (name, _) in ns.children(&dir).await.unwrap() {
        let node = ns.lookup(&dir, &name).await.unwrap();
        assert!(ns.attr(&node).await.unwrap().size > 0);
    }
    let calls = ns.api_calls();
    assert!(
        calls.get(Operation::GetPolicyVersion) <= BULK_THRESHOLD as u64,
        "{:?}",
        calls.snapshot()
    );
    assert!(calls.total() < 20, "{:?}", calls.snapshot());
}

#[tokio::test]
async fn vim_recovering_from_a_refused_save_leaves_iam_alone() {
    let (_, ns) = namespace(account(1));
    let dir = Node::PoliciesDir(PolicyScope::Local);
    let node = Node::Policy(PolicyScope::Local, "managed0".into());
    let old = ns.read(&node).await.unwrap().to_vec();
    ns.rename(&dir, "managed0.json", &dir, "managed0.json~")
        .await
        .unwrap();
    let Created::Document(n, draft) = ns.create(&dir, "managed0.json", 0o644).await.unwrap() else {
        panic!();
    };
    Namespace::draft_write(&n, &draft, 0, b"{ not a policy").unwrap();
    assert!(ns.commit(&n, &draft).await.is_err());
    ns.release_draft(&n, &draft);
    // vim's recovery: remove its new file, rename the backup back.
    ns.unlink(&dir, "managed0.json").await.unwrap();
    ns.rename(&dir, "managed0.json~", &dir, "managed0.json")
        .await
        .unwrap();
    assert_eq!(iam_writes(&ns), 0, "{:?}", ns.api_calls());
    assert_eq!(ns.read(&node).await.unwrap().to_vec(), old);
}

#[tokio::test]
async fn reading_every_users_access_keys_never_reads_the_account_in_bulk() {
    let mut iam = account(80);
    iam.latency = Duration::from_millis(10);
    iam.page_size = 100;
    let (_, ns) = namespace(iam);
    let started = std::time::Instant::now();
    for i in 0..80 {
        ns.read(&Node::AccessKeys(format!("user{i}")))
            .await
            .unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(
        ns.api_calls()
            .get(Operation::GetAccountAuthorizationDetails),
        0
    );
    // One ListAccessKeys and one GetAccessKeyLastUsed per user, no more.
    assert_eq!(ns.api_calls().get(Operation::ListAccessKeys), 80);
    assert_eq!(ns.api_calls().get(Operation::GetAccessKeyLastUsed), 80);
    // Only the keys: not the users' MFA devices or login profiles.
    assert_eq!(ns.api_calls().get(Operation::ListMFADevices), 0);
    assert_eq!(ns.api_calls().get(Operation::GetLoginProfile), 0);
    // After a run of misses the rest are fetched FAN_OUT at a time: 160
    // calls of 10 ms take 1.6 s one by one.
    let sequential = Duration::from_millis(10) * 160;
    assert!(elapsed * 3 < sequential, "{elapsed:?} vs {sequential:?}");
}

#[tokio::test]
async fn the_kernel_keeps_an_answer_no_longer_than_its_sources_stay_fresh() {
    let (_, ns) = namespace(account(2));
    let role_json = Node::EntityJson(Kind::Role, "role1".into());
    let (_, first) = ns.attr_with_lifetime(&role_json).await.unwrap();
    assert!(first <= Duration::from_secs(60) && first > Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, later) = ns.attr_with_lifetime(&role_json).await.unwrap();
    assert!(later < first, "{later:?} !< {first:?}: the sources aged");
    // Made at read time: never kept.
    let status = Node::Control(ControlFile::Status);
    assert_eq!(
        ns.attr_with_lifetime(&status).await.unwrap().1,
        Duration::ZERO
    );
    // Static folders hold nothing that can change.
    let (_, root) = ns.attr_with_lifetime(&Node::Root).await.unwrap();
    assert_eq!(root, Duration::from_secs(60));
}

#[tokio::test]
async fn a_listed_folder_is_dated_by_its_listing() {
    let (_, ns) = namespace(account(2));
    let roles = Node::KindDir(Kind::Role);
    // No listing fetched: a stand-in date, kept a second at most, and no call.
    let (a, life) = ns.attr_with_lifetime(&roles).await.unwrap();
    assert!(life <= Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (b, _) = ns.attr_with_lifetime(&roles).await.unwrap();
    assert!(b.mtime > a.mtime, "a stand-in is the time of asking");
    assert_eq!(ns.api_calls().total(), 0);
    // Fetched: dated by the fetch, the same on every stat until it expires.
    ns.children(&roles).await.unwrap();
    let (c, life) = ns.attr_with_lifetime(&roles).await.unwrap();
    assert!(life > Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (d, _) = ns.attr_with_lifetime(&roles).await.unwrap();
    assert_eq!(c.mtime, d.mtime);
    // Fetched again: a new date, so the kernel drops its copy.
    ns.refresh();
    ns.children(&roles).await.unwrap();
    let (e, _) = ns.attr_with_lifetime(&roles).await.unwrap();
    assert!(e.mtime > d.mtime);
}

#[tokio::test]
async fn entity_files_are_rendered_once_per_fetch() {
    let (_, ns) = namespace(account(1));
    let tags = Node::Tags(Kind::Role, "role0".into());
    let role_json = Node::EntityJson(Kind::Role, "role0".into());
    let (a, b) = (
        ns.read(&role_json).await.unwrap(),
        ns.read(&role_json).await.unwrap(),
    );
    let (Content::Shared(a), Content::Shared(b)) = (a, b) else {
        panic!("role.json is not a secret");
    };
    assert!(Arc::ptr_eq(&a, &b), "rendered again");
    save(&ns, &tags, r#"{"team": "blue"}"#, true).await.unwrap();
    let after = ns.read(&role_json).await.unwrap();
    assert_ne!(*after, **a, "role.json shows the new tags");
    assert!(String::from_utf8_lossy(&after).contains("blue"));
}

#[tokio::test]
async fn status_counts_requests_by_api_name() {
    let (_, ns) = namespace(account(1));
    ns.read(&Node::Credentials("role0".into())).await.unwrap();
    ns.read(&Node::Inline(Kind::Role, "role0".into(), "inline-a".into()))
        .await
        .unwrap();
    ns.read(&Node::Inline(Kind::Role, "role0".into(), "inline-b".into()))
        .await
        .unwrap();
    let status = ns.read(&Node::Control(ControlFile::Status)).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&status).unwrap();
    let calls = serde_json::json!({
        "api_calls": v["api_calls"],
        "api_calls_total": v["api_calls_total"],
        "sts_calls": v["sts_calls"],
    });
    assert_eq!(
        calls.to_string(),
        r#"{"api_calls":{"GetRole":1,"GetRolePolicy":2},"api_calls_total":3,"sts_calls":{"AssumeRole":1,"GetCallerIdentity":1}}"#
    );
}

// ---- role settings, boundaries, policy versions, service-linked roles -------

async fn read_json(ns: &Namespace, node: &Node) -> serde_json::Value {
    serde_json::from_slice(&ns.read(node).await.unwrap()).unwrap()
}

#[tokio::test]
async fn role_settings_save_with_one_update_role_after_local_checks() {
    let (iam, ns) = namespace(account(1));
    let settings = Node::RoleSettings("role0".into());
    let roles = Node::EntityDir(Kind::Role, "role0".into());
    assert!(names(&ns, &roles)
        .await
        .contains(&"settings.json".to_string()));
    assert_eq!(read_json(&ns, &settings).await["MaxSessionDuration"], 3600);

    let wanted = r#"{"Description": "deploys", "MaxSessionDuration": 7200}"#;
    save(&ns, &settings, wanted, true).await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::UpdateRole), 1);
    let role = iam.get_entity(Kind::Role, "role0").await.unwrap();
    assert_eq!(role.description.as_deref(), Some("deploys"));
    assert_eq!(role.max_session_duration, Some(7200));
    let shown = read_json(&ns, &Node::EntityJson(Kind::Role, "role0".into())).await;
    assert_eq!(shown["MaxSessionDuration"], 7200);

    // Equal: no call. Out of range or unknown keys: refused, IAM unchanged.
    save(&ns, &settings, wanted, true).await.unwrap();
    for bad in [
        r#"{"MaxSessionDuration": 60}"#,
        r#"{"MaxSessionDuration": 7200, "RoleName": "x"}"#,
        "not json",
    ] {
        let err = save(&ns, &settings, bad, true).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}: {err}");
    }
    assert_eq!(ns.api_calls().get(Operation::UpdateRole), 1);
    let role = iam.get_entity(Kind::Role, "role0").await.unwrap();
    assert_eq!(role.max_session_duration, Some(7200));
}

#[tokio::test]
async fn a_boundary_is_a_link_set_by_ln_and_removed_by_rm() {
    let (iam, ns) = namespace(account(1));
    let user = Node::EntityDir(Kind::User, "user0".into());
    let boundary = Node::Boundary(Kind::User, "user0".into());
    assert!(!names(&ns, &user).await.contains(&"boundary".to_string()));
    assert!(ns.lookup(&user, "boundary").await.is_err());

    ns.symlink(&user, "boundary", "../../policies/managed0.json")
        .await
        .unwrap();
    let e = iam.get_entity(Kind::User, "user0").await.unwrap();
    assert!(e
        .permissions_boundary
        .unwrap()
        .arn
        .ends_with(":policy/managed0"));
    assert!(names(&ns, &user).await.contains(&"boundary".to_string()));
    assert_eq!(
        ns.readlink(&boundary).await.unwrap(),
        "../../policies/managed0.json"
    );

    // Not a policy, or no such policy: refused, the boundary stays.
    for bad in ["../../roles/role0", "../../policies/nope.json", "managed0"] {
        assert!(ns.symlink(&user, "boundary", bad).await.is_err(), "{bad}");
    }
    assert_eq!(ns.api_calls().get(Operation::PutUserPermissionsBoundary), 1);

    ns.unlink(&user, "boundary").await.unwrap();
    let e = iam.get_entity(Kind::User, "user0").await.unwrap();
    assert!(e.permissions_boundary.is_none());
    assert!(ns.lookup(&user, "boundary").await.is_err());
    // Groups have none.
    let group = Node::EntityDir(Kind::Group, "group0".into());
    assert!(ns
        .symlink(&group, "boundary", "../../policies/managed0.json")
        .await
        .is_err());
    assert_eq!(iam_writes(&ns), 2);
}

#[tokio::test]
async fn ln_sfn_over_a_boundary_replaces_it_in_one_call() {
    let (iam, ns) = namespace(account(2));
    let role = Node::EntityDir(Kind::Role, "role0".into());
    ns.symlink(&role, "boundary", "../../policies/managed0.json")
        .await
        .unwrap();
    // GNU ln -sfn: a link made under a temporary name, renamed over.
    ns.symlink(&role, "CuTmp123", "../../policies/managed1.json")
        .await
        .unwrap();
    ns.rename(&role, "CuTmp123", &role, "boundary")
        .await
        .unwrap();
    let e = iam.get_entity(Kind::Role, "role0").await.unwrap();
    assert!(e.permissions_boundary.unwrap().arn.ends_with("/managed1"));
    assert!(!names(&ns, &role).await.contains(&"CuTmp123".to_string()));
    assert_eq!(ns.api_calls().get(Operation::PutRolePermissionsBoundary), 2);
}

#[tokio::test]
async fn policy_versions_list_read_and_roll_back() {
    let (iam, ns) = namespace(account(1));
    let policy = Node::Policy(PolicyScope::Local, "managed0".into());
    let v2 = DOC.replace("s3:GetObject", "s3:PutObject");
    save(&ns, &policy, &v2, true).await.unwrap();

    let dir = Node::VersionsDir("managed0".into());
    assert!(names(&ns, &Node::VersionsRoot)
        .await
        .contains(&"managed0".to_string()));
    let mut listed = names(&ns, &dir).await;
    listed.sort();
    assert_eq!(listed, ["default", "v1.json", "v2.json"]);
    let default = Node::DefaultVersion("managed0".into());
    assert_eq!(ns.readlink(&default).await.unwrap(), "v2.json");
    let v1 = Node::Version("managed0".into(), "v1".into());
    assert!(String::from_utf8(ns.read(&v1).await.unwrap().to_vec())
        .unwrap()
        .contains("s3:GetObject"));
    assert_eq!(v1.perm(), 0o444);

    // Rollback: ln -sfn v1.json default (a temporary link renamed over).
    ns.symlink(&dir, "CuX", "v1.json").await.unwrap();
    ns.rename(&dir, "CuX", &dir, "default").await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::SetDefaultPolicyVersion), 1);
    assert_eq!(ns.readlink(&default).await.unwrap(), "v1.json");
    assert!(String::from_utf8(ns.read(&policy).await.unwrap().to_vec())
        .unwrap()
        .contains("s3:GetObject"));
    let listed = collect_pages(|m| {
        let arn = format!(
            "arn:aws:iam::{}:policy/managed0",
            crate::iam::memory::ACCOUNT
        );
        let iam = iam.clone();
        async move { iam.list_policy_versions(&arn, m).await }
    })
    .await
    .unwrap();
    assert!(listed.iter().any(|v| v.id == "v1" && v.is_default));

    // To a version that does not exist, or not a version: refused, no call.
    for bad in ["v9.json", "../managed0/v1.json", "v1"] {
        ns.symlink(&dir, "CuY", bad).await.unwrap();
        assert!(
            ns.rename(&dir, "CuY", &dir, "default").await.is_err(),
            "{bad}"
        );
        ns.unlink(&dir, "CuY").await.unwrap();
    }
    assert_eq!(ns.api_calls().get(Operation::SetDefaultPolicyVersion), 1);

    // The default cannot go; another can; the link itself cannot.
    let err = ns.unlink(&dir, "v1.json").await.unwrap_err();
    assert_eq!(crate::error::errno(err.kind, true), libc::EBUSY, "{err}");
    assert_eq!(
        ns.unlink(&dir, "default").await.unwrap_err().kind,
        ErrorKind::NotPermitted
    );
    ns.unlink(&dir, "v2.json").await.unwrap();
    assert_eq!(ns.api_calls().get(Operation::DeletePolicyVersion), 1);
    assert_eq!(names(&ns, &dir).await, ["default", "v1.json"]);
}

#[tokio::test]
async fn a_walk_of_policy_versions_costs_pages_not_versions() {
    let n = 40;
    let mut iam = account(n);
    iam.page_size = 100;
    let (_, ns) = namespace(iam);
    let files = walk(&ns, Node::VersionsRoot).await;
    assert_eq!(files, n);
    let calls = ns.api_calls();
    assert!(
        calls.get(Operation::ListPolicyVersions) <= BULK_THRESHOLD as u64,
        "{:?}",
        calls.snapshot()
    );
    assert!(
        calls.total() <= 2 * BULK_THRESHOLD as u64 + 4,
        "{:?}",
        calls.snapshot()
    );
}

#[tokio::test]
async fn service_linked_roles_read_like_others_and_refuse_every_change() {
    let iam = account(1);
    iam.set_path(Kind::Role, "role0", "/aws-service-role/ec2.amazonaws.com/");
    let (_, ns) = namespace(iam);
    let role = Node::EntityDir(Kind::Role, "role0".into());
    assert!(!ns
        .read(&Node::TrustPolicy("role0".into()))
        .await
        .unwrap()
        .is_empty());
    let refusals = [
        save(&ns, &Node::TrustPolicy("role0".into()), TRUST, true)
            .await
            .unwrap_err(),
        save(
            &ns,
            &Node::RoleSettings("role0".into()),
            r#"{"MaxSessionDuration": 7200}"#,
            true,
        )
        .await
        .unwrap_err(),
        ns.unlink(&Node::AttachedDir(Kind::Role, "role0".into()), "managed0")
            .await
            .unwrap_err(),
        ns.symlink(&role, "boundary", "../../policies/managed0.json")
            .await
            .unwrap_err(),
        ns.rmdir(&Node::KindDir(Kind::Role), "role0")
            .await
            .unwrap_err(),
    ];
    for err in refusals {
        assert_eq!(err.kind, ErrorKind::Unmodifiable, "{err}");
        assert!(err.message.contains("service-linked"), "{err}");
    }
    assert_eq!(iam_writes(&ns), 0);
}

// ---- account/ and users' sign-in files ---------------------------------------

#[tokio::test]
async fn the_account_folder_shows_what_the_account_has() {
    let (iam, ns) = namespace(account(2));
    let dir = Node::AccountDir;
    assert_eq!(
        names(&ns, &dir).await,
        ["summary.json", "credential-report.csv"]
    );
    assert_eq!(read_json(&ns, &Node::AccountSummary).await["Users"], 2);
    let report = ns.read(&Node::CredentialReport).await.unwrap();
    assert!(String::from_utf8_lossy(&report).starts_with("user,arn,"));
    assert_eq!(ns.api_calls().get(Operation::GenerateCredentialReport), 2);
    ns.read(&Node::CredentialReport).await.unwrap();
    assert_eq!(
        ns.api_calls().get(Operation::GetCredentialReport),
        1,
        "cached"
    );
    assert!(ns.lookup(&dir, "password-policy.json").await.is_err());

    // Created by writing them; equal: no call; bad: refused, nothing sent.
    let policy = Node::PasswordPolicy;
    let Created::Document(node, draft) = ns
        .create(&dir, "password-policy.json", 0o644)
        .await
        .unwrap()
    else {
        panic!("not a document")
    };
    let doc = r#"{"MinimumPasswordLength": 14, "RequireSymbols": true, "MaxPasswordAge": 90}"#;
    Namespace::draft_write(&node, &draft, 0, doc.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    ns.release_draft(&node, &draft);
    let (held, _) = iam.account_settings();
    assert_eq!(held.as_ref().unwrap().minimum_password_length, Some(14));
    ns.refresh(); // until the TTL passes the file shows what was written
    let shown = read_json(&ns, &policy).await;
    assert_eq!(shown["ExpirePasswords"], true, "IAM's own field");
    save(&ns, &policy, &shown.to_string(), true).await.unwrap();
    for bad in [r#"{"MinimumPasswordLength": 4}"#, r#"{"Length": 8}"#] {
        assert!(save(&ns, &policy, bad, true).await.is_err(), "{bad}");
    }
    assert_eq!(
        ns.api_calls().get(Operation::UpdateAccountPasswordPolicy),
        1
    );

    let Created::Document(node, draft) = ns.create(&dir, "alias", 0o644).await.unwrap() else {
        panic!("not a document")
    };
    Namespace::draft_write(&node, &draft, 0, b"acme-prod\n").unwrap();
    ns.commit(&node, &draft).await.unwrap();
    ns.release_draft(&node, &draft);
    assert_eq!(iam.account_settings().1, ["acme-prod"]);
    assert_eq!(
        &ns.read(&Node::AccountAlias).await.unwrap()[..],
        b"acme-prod\n"
    );
    save(&ns, &Node::AccountAlias, "acme-staging\n", true)
        .await
        .unwrap();
    assert_eq!(iam.account_settings().1, ["acme-staging"]);
    assert!(save(&ns, &Node::AccountAlias, "Not An Alias\n", true)
        .await
        .is_err());
    assert_eq!(iam.account_settings().1, ["acme-staging"]);

    // rm: carried out after its grace.
    ns.unlink(&dir, "alias").await.unwrap();
    ns.unlink(&dir, "password-policy.json").await.unwrap();
    settle_all(&ns).await;
    assert_eq!(iam.account_settings(), (None, vec![]));
    assert_eq!(
        names(&ns, &dir).await,
        ["summary.json", "credential-report.csv"]
    );
}

#[tokio::test]
async fn users_show_mfa_devices_and_whether_they_have_a_console_password() {
    let iam = account(2);
    iam.add_login("user1", "arn:aws:iam::123456789012:mfa/user1");
    let (_, ns) = namespace(iam);
    let listed = names(&ns, &Node::EntityDir(Kind::User, "user1".into())).await;
    assert!(listed.contains(&"mfa-devices.json".to_string()));
    assert!(listed.contains(&"login-profile.json".to_string()));
    let login = read_json(&ns, &Node::LoginProfile("user1".into())).await;
    assert_eq!(login["PasswordExists"], true);
    assert_eq!(login["PasswordResetRequired"], true);
    assert_eq!(
        read_json(&ns, &Node::LoginProfile("user0".into())).await,
        serde_json::json!({"PasswordExists": false})
    );
    let mfa = read_json(&ns, &Node::MfaDevices("user1".into())).await;
    assert_eq!(
        mfa[0]["SerialNumber"],
        "arn:aws:iam::123456789012:mfa/user1"
    );
    assert_eq!(Node::MfaDevices("user1".into()).perm(), 0o444);
}

/// A role made by mkdir trusts the account's root in the caller's own
/// partition: an aws-cn caller gets arn:aws-cn, never a hard-coded arn:aws.
#[tokio::test]
async fn mkdir_role_trusts_root_in_the_callers_partition() {
    for partition in ["aws-cn", "aws-us-gov", "aws"] {
        let mut iam = MemoryIam::default();
        iam.caller_arn = format!("arn:{partition}:iam::123456789012:user/tester");
        let (_iam, ns) = namespace(iam);
        ns.mkdir(&Node::KindDir(Kind::Role), "made").await.unwrap();
        let trust = ns.read(&Node::TrustPolicy("made".into())).await.unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&trust).unwrap();
        assert_eq!(
            doc["Statement"][0]["Principal"]["AWS"],
            format!("arn:{partition}:iam::123456789012:root"),
            "{partition}"
        );
        let role = ns
            .read(&Node::EntityJson(Kind::Role, "made".into()))
            .await
            .unwrap();
        let role: serde_json::Value = serde_json::from_slice(&role).unwrap();
        assert!(
            role["Arn"]
                .as_str()
                .unwrap()
                .starts_with(&format!("arn:{partition}:iam::")),
            "{role}"
        );
    }
}

#[tokio::test]
async fn instance_profiles_hold_one_role_linked_both_ways() {
    let (iam, ns) = namespace(account(2));
    let top = Node::InstanceProfilesDir;
    ns.mkdir(&top, "web").await.unwrap();
    assert_eq!(names(&ns, &top).await, ["web"]);
    let roles = Node::InstanceProfileRoles("web".into());
    ns.symlink(&roles, "role0", "../../../roles/role0")
        .await
        .unwrap();
    assert_eq!(
        iam.get_instance_profile("web").await.unwrap().roles,
        ["role0"]
    );
    let back = Node::RoleInstanceProfiles("role0".into());
    assert_eq!(names(&ns, &back).await, ["web"]);
    assert_eq!(
        ns.readlink(&Node::RoleInstanceProfile("role0".into(), "web".into()))
            .await
            .unwrap(),
        "../../../instance-profiles/web"
    );
    assert_eq!(
        ns.readlink(&Node::InstanceProfileRole("web".into(), "role0".into()))
            .await
            .unwrap(),
        "../../../roles/role0"
    );
    let json = read_json(&ns, &Node::InstanceProfileJson("web".into())).await;
    assert_eq!(json["Roles"], serde_json::json!(["role0"]));

    // A second role, a link to something else, rmdir while held, the
    // role's own rmdir: refused, nothing sent.
    let before = iam_writes(&ns);
    let err = ns
        .symlink(&roles, "role1", "../../../roles/role1")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::LimitExceeded, "{err}");
    assert!(err.message.contains("one role"), "{err}");
    assert!(ns
        .symlink(&roles, "user0", "../../../users/user0")
        .await
        .is_err());
    let err = ns.rmdir(&top, "web").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotEmpty, "{err}");
    let err = ns
        .rmdir(&Node::KindDir(Kind::Role), "role0")
        .await
        .unwrap_err();
    assert!(err.message.contains("instance profiles (web)"), "{err}");
    assert_eq!(iam_writes(&ns), before);

    // rm from either end removes the role; then rmdir deletes.
    ns.unlink(&back, "web").await.unwrap();
    assert!(iam
        .get_instance_profile("web")
        .await
        .unwrap()
        .roles
        .is_empty());
    ns.symlink(&back, "web", "../../../instance-profiles/web")
        .await
        .unwrap();
    ns.unlink(&roles, "role0").await.unwrap();
    // Its tags, saved as the difference.
    let tags = Node::InstanceProfileTags("web".into());
    assert_eq!(&ns.read(&tags).await.unwrap()[..], b"{}\n");
    save(&ns, &tags, r#"{"team": "web", "env": "prod"}"#, true)
        .await
        .unwrap();
    save(&ns, &tags, r#"{"team": "web"}"#, true).await.unwrap();
    let held = iam.get_instance_profile("web").await.unwrap().tags.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].key.as_str(), held[0].value.as_str()),
        ("team", "web")
    );
    assert_eq!(ns.api_calls().get(Operation::TagInstanceProfile), 1);
    assert_eq!(ns.api_calls().get(Operation::UntagInstanceProfile), 1);
    ns.rmdir(&top, "web").await.unwrap();
    assert!(iam.get_instance_profile("web").await.is_err());
    assert!(ns.mkdir(&top, "bad name").await.is_err());
}

#[tokio::test]
async fn policy_attachments_list_who_has_a_policy() {
    let iam = account(2);
    iam.add_policy("Unused", "/", DOC);
    iam.add_policy("ReadOnlyAccess", "/aws/", DOC);
    iam.attach(Kind::Role, "role1", "ReadOnlyAccess");
    let (_, ns) = namespace(iam);
    let local = Node::AttachmentsRoot(PolicyScope::Local);
    let mut listed = names(&ns, &local).await;
    listed.sort();
    assert_eq!(listed, ["Unused", "managed0", "managed1"]);
    let dir = Node::AttachmentsDir(PolicyScope::Local, "managed0".into());
    assert_eq!(names(&ns, &dir).await, ["users", "groups", "roles"]);
    let roles = Node::AttachmentsKindDir(PolicyScope::Local, "managed0".into(), Kind::Role);
    assert_eq!(names(&ns, &roles).await, ["role0"]);
    let link = Node::Attachment(
        PolicyScope::Local,
        "managed0".into(),
        Kind::Role,
        "role0".into(),
    );
    assert_eq!(ns.readlink(&link).await.unwrap(), "../../../roles/role0");
    // Attached nowhere: no call to ask.
    let before = ns.api_calls().get(Operation::ListEntitiesForPolicy);
    let unused = Node::AttachmentsKindDir(PolicyScope::Local, "Unused".into(), Kind::User);
    assert!(names(&ns, &unused).await.is_empty());
    assert_eq!(ns.api_calls().get(Operation::ListEntitiesForPolicy), before);
    // AWS-managed: only those attached somewhere.
    assert_eq!(
        names(&ns, &Node::AttachmentsRoot(PolicyScope::Aws)).await,
        ["ReadOnlyAccess"]
    );
    // An attachment made through the mount shows at once.
    ns.symlink(
        &Node::AttachedDir(Kind::User, "user1".into()),
        "managed0",
        "../../../policies/managed0.json",
    )
    .await
    .unwrap();
    let users = Node::AttachmentsKindDir(PolicyScope::Local, "managed0".into(), Kind::User);
    let mut listed = names(&ns, &users).await;
    listed.sort();
    assert_eq!(listed, ["user0", "user1"]);
}

#[tokio::test]
async fn identity_providers_are_files_saved_as_their_differences() {
    let (iam, ns) = namespace(account(1));
    let saml_dir = Node::SamlDir;
    assert_eq!(names(&ns, &Node::ProvidersDir).await, ["saml", "oidc"]);
    let metadata = crate::policy::testing::saml_metadata();
    let Created::Document(node, draft) = ns.create(&saml_dir, "Okta.xml", 0o644).await.unwrap()
    else {
        panic!("not a document")
    };
    Namespace::draft_write(&node, &draft, 0, metadata.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    ns.release_draft(&node, &draft);
    assert_eq!(names(&ns, &saml_dir).await, ["Okta.xml"]);
    let arn = format!(
        "arn:aws:iam::{}:saml-provider/Okta",
        crate::iam::memory::ACCOUNT
    );
    assert_eq!(iam.get_saml_provider(&arn).await.unwrap(), metadata);
    // Not XML: refused, IAM unchanged.
    let err = save(&ns, &Node::SamlProvider("Okta".into()), "<not xml", true)
        .await
        .unwrap_err();
    assert!(err.message.contains("malformed"), "{err}");
    assert_eq!(iam.get_saml_provider(&arn).await.unwrap(), metadata);

    // OIDC: the URL names the file, / escaped.
    let url = "oidc.eks.us-east-1.amazonaws.com/id/ABC";
    let file = "oidc.eks.us-east-1.amazonaws.com%2Fid%2FABC.json";
    let oidc_dir = Node::OidcDir;
    let Created::Document(node, draft) = ns.create(&oidc_dir, file, 0o644).await.unwrap() else {
        panic!("not a document")
    };
    assert_eq!(node, Node::OidcProvider(url.into()));
    let doc = format!(
        r#"{{"Url": "https://{url}", "ClientIDList": ["sts.amazonaws.com"], "ThumbprintList": ["{}"]}}"#,
        "a".repeat(40)
    );
    Namespace::draft_write(&node, &draft, 0, doc.as_bytes()).unwrap();
    ns.commit(&node, &draft).await.unwrap();
    ns.release_draft(&node, &draft);
    assert_eq!(names(&ns, &oidc_dir).await, [file]);
    let shown = read_json(&ns, &node).await;
    assert_eq!(shown["Url"], format!("https://{url}"));

    // A save applies the difference: one client id added, one removed,
    // thumbprints replaced.
    let before = ns.api_calls().snapshot();
    let doc = format!(
        r#"{{"Url": "https://{url}", "ClientIDList": ["my-app"], "ThumbprintList": ["{}"]}}"#,
        "b".repeat(40)
    );
    save(&ns, &node, &doc, true).await.unwrap();
    let after = ns.api_calls();
    let made = |op| after.get(op) - before.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n);
    assert_eq!(made(Operation::AddClientIDToOpenIDConnectProvider), 1);
    assert_eq!(made(Operation::RemoveClientIDFromOpenIDConnectProvider), 1);
    assert_eq!(made(Operation::UpdateOpenIDConnectProviderThumbprint), 1);
    // Bad input: http, short thumbprint, another URL in this file.
    for bad in [
        format!(r#"{{"Url": "http://{url}"}}"#),
        format!(r#"{{"Url": "https://{url}", "ThumbprintList": ["abc"]}}"#),
        r#"{"Url": "https://elsewhere.example.com"}"#.to_string(),
    ] {
        let err = save(&ns, &node, &bad, true).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}: {err}");
    }

    // rm of a provider a trust policy names is refused (after rm's grace).
    let oidc_arn = format!(
        "arn:aws:iam::{}:oidc-provider/{url}",
        crate::iam::memory::ACCOUNT
    );
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{oidc_arn}"}},"Action":"sts:AssumeRoleWithWebIdentity"}}]}}"#
    );
    save(&ns, &Node::TrustPolicy("role0".into()), &trust, true)
        .await
        .unwrap();
    ns.unlink(&oidc_dir, file).await.unwrap();
    ns.unlink(&saml_dir, "Okta.xml").await.unwrap();
    settle_all(&ns).await;
    assert!(
        iam.get_oidc_provider(&oidc_arn).await.is_ok(),
        "in use: kept"
    );
    assert!(
        iam.get_saml_provider(&arn).await.is_err(),
        "unused: deleted"
    );
    let errors = String::from_utf8_lossy(&ns.errors.render()).into_owned();
    assert!(errors.contains("trust policy of roles/role0"), "{errors}");
}

#[tokio::test]
async fn last_accessed_is_made_on_demand_and_never_listed() {
    let (_, ns) = namespace(account(1));
    let role = Node::EntityDir(Kind::Role, "role0".into());
    assert!(!names(&ns, &role)
        .await
        .contains(&"last-accessed.json".to_string()));
    walk(&ns, role.clone()).await;
    assert_eq!(
        ns.api_calls()
            .get(Operation::GenerateServiceLastAccessedDetails),
        0,
        "a walk starts no job"
    );
    let node = ns.lookup(&role, "last-accessed.json").await.unwrap();
    let shown = read_json(&ns, &node).await;
    assert_eq!(shown[0]["ServiceNamespace"], "s3");
    assert!(shown[0]["LastAuthenticatedEntity"]
        .as_str()
        .unwrap()
        .ends_with(":role/role0"));
    // The job was in progress once, then done; a second read is cached.
    assert_eq!(
        ns.api_calls().get(Operation::GetServiceLastAccessedDetails),
        2
    );
    read_json(&ns, &node).await;
    assert_eq!(
        ns.api_calls()
            .get(Operation::GenerateServiceLastAccessedDetails),
        1
    );
}

#[tokio::test]
async fn a_cold_listing_starts_the_bulk_read_beside_it() {
    let mut iam = account(40);
    iam.page_size = 100;
    let iam = Arc::new(iam);
    let ns = Namespace::new(iam.clone(), settings()).shared();
    let files = walk(&ns, Node::KindDir(Kind::Role)).await;
    assert_eq!(files, 40 * 6);
    let calls = ns.api_calls();
    // No per-entity calls to spot the walk: the lookups waited for the
    // bulk read the listing started.
    for op in [
        Operation::GetRole,
        Operation::ListRolePolicies,
        Operation::GetRolePolicy,
        Operation::ListAttachedRolePolicies,
    ] {
        assert_eq!(calls.get(op), 0, "{op:?}: {:?}", calls.snapshot());
    }
    assert_eq!(calls.get(Operation::GetAccountAuthorizationDetails), 1);
    assert_eq!(calls.get(Operation::ListRoles), 1, "one listing for both");

    // A namespace not shared (the unit tests') waits for the walk to show.
    let (_, plain) = namespace(account(40));
    walk(&plain, Node::KindDir(Kind::Role)).await;
    assert!(plain.api_calls().get(Operation::GetRole) > 0);
}

#[tokio::test]
async fn a_bulk_read_under_way_during_a_save_does_not_cache_over_it() {
    use crate::iam::faulty::{Call, Faulty, Rule};
    let iam = Arc::new(Faulty::new(Arc::new(account(3))));
    // The bulk read reads IAM at once and answers after the save returned.
    iam.add(Rule::answer_late(
        Call::GetAccountAuthorizationDetails,
        Duration::from_millis(300),
    ));
    let ns = Namespace::new(iam.clone(), settings()).shared();
    let tags = Node::Tags(Kind::Role, "role1".into());
    read_json(&ns, &tags).await; // cached: the save waits for no read
    let walker = {
        let ns = ns.clone();
        tokio::spawn(async move { walk(&ns, Node::KindDir(Kind::Role)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    save(&ns, &tags, r#"{"team": "after"}"#, true)
        .await
        .unwrap();
    walker.await.unwrap();
    assert_eq!(
        ns.api_calls()
            .get(Operation::GetAccountAuthorizationDetails),
        1
    );
    let role = read_json(&ns, &Node::EntityJson(Kind::Role, "role1".into())).await;
    assert_eq!(
        role["Tags"],
        json!([{"Key": "team", "Value": "after"}]),
        "{role}"
    );
    let tags = read_json(&ns, &tags).await;
    assert_eq!(tags, json!({"team": "after"}));
}

#[tokio::test]
async fn views_of_a_change_in_other_folders_show_it_at_once() {
    // policy-attachments/, policy-versions/, roles/X/instance-profiles/ and
    // account/summary.json, each read (cached) before the change.
    let (_, ns) = namespace(account(3));
    let users = Node::AttachmentsKindDir(PolicyScope::Local, "managed1".into(), Kind::User);
    let versions = Node::VersionsDir("managed0".into());
    let profile_roles = Node::RoleInstanceProfiles("role0".into());
    // Warm every view first: the change must replace what is cached.
    assert_eq!(names(&ns, &users).await, ["user1"]);
    assert_eq!(names(&ns, &versions).await, ["default", "v1.json"]);
    assert!(names(&ns, &profile_roles).await.is_empty());
    let summary = read_json(&ns, &Node::AccountSummary).await;

    let attached = Node::AttachedDir(Kind::User, "user0".into());
    ns.symlink(&attached, "managed1", "../../../policies/managed1.json")
        .await
        .unwrap();
    assert_eq!(names(&ns, &users).await, ["user0", "user1"]);
    ns.unlink(&attached, "managed1").await.unwrap();
    assert_eq!(names(&ns, &users).await, ["user1"]);

    save(
        &ns,
        &Node::Policy(PolicyScope::Local, "managed0".into()),
        DOC2,
        true,
    )
    .await
    .unwrap();
    let mut shown = names(&ns, &versions).await;
    shown.sort();
    assert_eq!(shown, ["default", "v1.json", "v2.json"]);
    assert_eq!(
        ns.readlink(&Node::DefaultVersion("managed0".into()))
            .await
            .unwrap(),
        "v2.json"
    );

    ns.mkdir(&Node::InstanceProfilesDir, "web").await.unwrap();
    ns.symlink(
        &Node::InstanceProfileRoles("web".into()),
        "role0",
        "../../../roles/role0",
    )
    .await
    .unwrap();
    assert_eq!(names(&ns, &profile_roles).await, ["web"]);

    ns.mkdir(&Node::KindDir(Kind::User), "newuser")
        .await
        .unwrap();
    let after = read_json(&ns, &Node::AccountSummary).await;
    assert_eq!(
        after["Users"],
        json!(summary["Users"].as_u64().unwrap() + 1)
    );
}
