use std::time::Duration;

use super::*;
use crate::iam::memory::MemoryIam;

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

fn settings() -> Settings {
    Settings {
        endpoint: "memory".into(),
        region: "us-east-1".into(),
        read_only: false,
        cache_ttl: Duration::from_secs(60),
        cache_entries: 10_000,
        session_duration: 3600,
        session_name: "iamfs-tester".into(),
    }
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
    let (iam, ns) = namespace(account(3));
    assert_eq!(names(&ns, &Node::Root).await.len(), 6);
    assert_eq!(iam.calls().total(), 0);
}

#[tokio::test]
async fn second_readdir_makes_no_call() {
    let (iam, ns) = namespace(account(5));
    let roles = Node::KindDir(Kind::Role);
    let first = names(&ns, &roles).await;
    let after_first = iam.calls().total();
    assert!(after_first > 0);
    for (name, _) in ns.children(&roles).await.unwrap() {
        let node = ns.lookup(&roles, &name).await.unwrap();
        ns.attr(&node).await.unwrap();
    }
    assert_eq!(names(&ns, &roles).await, first);
    assert_eq!(
        iam.calls().total(),
        after_first,
        "{:?}",
        iam.calls().snapshot()
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
    let (iam, ns) = namespace(iam);
    for kind in Kind::ALL {
        assert_eq!(names(&ns, &Node::KindDir(kind)).await.len(), 10);
    }
    let role0 = |n: &str| Node::Entity(Kind::Role, "role0".into()).child(n).unwrap();
    assert_eq!(names(&ns, &role0("policies")).await.len(), 12);
    assert_eq!(names(&ns, &role0("attached")).await.len(), 11);
    let user0 = Node::Entity(Kind::User, "user0".into());
    assert_eq!(names(&ns, &user0.child("groups").unwrap()).await.len(), 10);
    let group0 = Node::Entity(Kind::Group, "group0".into());
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
    let calls = iam.calls();
    assert_eq!(calls.get("ListRoles"), 4);
    assert_eq!(calls.get("ListRolePolicies"), 4);
    assert_eq!(calls.get("ListAttachedRolePolicies"), 4);
    assert_eq!(calls.get("ListGroupsForUser"), 4);
    assert_eq!(calls.get("GetGroup"), 4);
    assert_eq!(calls.get("ListPolicies"), 4 + 1);
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
    let (iam, ns) = namespace(iam);
    let files = walk(&ns, Node::KindDir(Kind::Role)).await;
    assert_eq!(files, n * 5); // role.json, trust, tags, 2 inline
    walk(&ns, Node::PoliciesDir(PolicyScope::Local)).await;
    let calls = iam.calls();
    assert!(calls.get("GetAccountAuthorizationDetails") > 0);
    // Everything after the threshold comes from the bulk read.
    assert!(
        calls.get("GetRole") < BULK_THRESHOLD as u64 + 1,
        "{:?}",
        calls.snapshot()
    );
    assert!(calls.get("GetRolePolicy") < 2 * BULK_THRESHOLD as u64 + 1);
    assert!(calls.get("GetPolicyVersion") < BULK_THRESHOLD as u64 + 1);
    // The naive way is one call per file (1500 here); this is pages of GAAD
    // (12) and of the listings, plus the few calls before the bulk read.
    assert!(calls.total() <= 50, "{:?}", calls.snapshot());
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
    let (iam, ns) = namespace(iam);
    let started = std::time::Instant::now();
    let files = walk(&ns, Node::KindDir(Kind::Role)).await;
    let elapsed = started.elapsed();
    let calls = iam.calls();
    assert_eq!(calls.get("GetAccountAuthorizationDetails"), 1);
    // 40 roles x (GetRole + ListRolePolicies + 2 GetRolePolicy + ListAttached) = 200
    // calls of 20 ms: sequentially 4 s; the fan-out runs FAN_OUT at once.
    let sequential = Duration::from_millis(20) * calls.total() as u32;
    assert!(elapsed * 3 < sequential, "{elapsed:?} vs {sequential:?}");
    assert_eq!(files, 40 * 5);
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
        .attr(&Node::Entity(Kind::Role, "role1".into()))
        .await
        .unwrap();
    assert_eq!(dir.mtime, role.create_date);
    assert_eq!(dir.perm, 0o755);
}

#[tokio::test]
async fn concurrent_reads_of_one_document_make_one_call() {
    let mut iam = account(1);
    iam.latency = Duration::from_millis(30);
    let (iam, ns) = namespace(iam);
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
    assert_eq!(iam.calls().get("GetUserPolicy"), 1);
}

#[tokio::test]
async fn credentials_resolve_by_name_but_are_not_listed() {
    let (iam, ns) = namespace(account(1));
    let role = Node::Entity(Kind::Role, "role0".into());
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
    assert_eq!(iam.calls().get("sts:AssumeRole"), 1);
    let (session, secs) = iam.last_assume.lock().clone().unwrap();
    assert_eq!((session.as_str(), secs), ("iamfs-tester", 3600));
}

#[tokio::test]
async fn concurrent_first_reads_assume_the_role_once() {
    let mut iam = account(1);
    iam.latency = Duration::from_millis(20);
    let (iam, ns) = namespace(iam);
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
    assert_eq!(iam.calls().get("sts:AssumeRole"), 1);
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
