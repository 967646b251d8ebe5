//! The authorization policy in `policies/` as a decision table: every role × object × action,
//! in the principal's own tenant and in another one, against a table written out here. Then
//! the policy's exceptions, bad files, and reloads.

use gateway::layer::authz::{action, object, Authorizer, AuthzError};
use gateway::tenancy::{AuthMethod, Principal, Role, TenantId};
use std::path::{Path, PathBuf};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("policies")
}

fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("tenant id")
}

fn principal(id: &str, home: &str, role: Role) -> Principal {
    Principal {
        id: id.to_owned(),
        tenant: tenant(home),
        role,
        method: AuthMethod::ApiToken,
    }
}

async fn shipped() -> Authorizer {
    Authorizer::load(policies().join("model.conf"), policies().join("policy.csv"))
        .await
        .expect("the shipped policy loads")
}

/// What each role may do in its own tenant with the shipped policy, read and write. `R`:
/// read only, `RW`: both, `-`: neither. In another tenant every role is denied.
const TABLE: [(&str, [(&str, &str); 8]); 5] = [
    //            metrics      metrics:all  clear-names         federate      audit      usage      pii-lookup      admin
    (
        "viewer",
        [
            ("metrics", "R"),
            ("metrics:all", "-"),
            ("metrics:clear-names", "-"),
            ("federate", "R"),
            ("audit", "-"),
            ("usage", "-"),
            ("pii-lookup", "-"),
            ("admin", "-"),
        ],
    ),
    (
        "admin",
        [
            ("metrics", "R"),
            ("metrics:all", "-"),
            ("metrics:clear-names", "R"),
            ("federate", "R"),
            ("audit", "-"),
            ("usage", "-"),
            ("pii-lookup", "-"),
            ("admin", "-"),
        ],
    ),
    (
        "operator",
        [
            ("metrics", "RW"),
            ("metrics:all", "RW"),
            ("metrics:clear-names", "RW"),
            ("federate", "RW"),
            ("audit", "RW"),
            ("usage", "RW"),
            ("pii-lookup", "RW"),
            ("admin", "RW"),
        ],
    ),
    (
        "auditor",
        [
            ("metrics", "-"),
            ("metrics:all", "-"),
            ("metrics:clear-names", "-"),
            ("federate", "-"),
            ("audit", "R"),
            ("usage", "-"),
            ("pii-lookup", "-"),
            ("admin", "-"),
        ],
    ),
    (
        "billing",
        [
            ("metrics", "-"),
            ("metrics:all", "-"),
            ("metrics:clear-names", "-"),
            ("federate", "-"),
            ("audit", "-"),
            ("usage", "R"),
            ("pii-lookup", "-"),
            ("admin", "-"),
        ],
    ),
];

fn expected(role: Role, obj: &str, act: &str, own_tenant: bool) -> bool {
    if !own_tenant {
        return false;
    }
    let (_, row) = TABLE
        .iter()
        .find(|(r, _)| *r == role.as_str())
        .expect("every role has a row");
    let (_, cell) = row
        .iter()
        .find(|(o, _)| *o == obj)
        .expect("every object has a column");
    match act {
        "read" => cell.contains('R'),
        "write" => cell.contains('W'),
        other => panic!("no column for action {other}"),
    }
}

#[tokio::test]
async fn every_role_object_action_and_tenant_decides_as_the_table_says() {
    let authz = shipped().await;
    // The table covers exactly the objects and actions the gateway asks about.
    for (_, row) in TABLE {
        let objs: Vec<&str> = row.iter().map(|(o, _)| *o).collect();
        assert_eq!(objs, object::ALL);
    }
    let mut checked = 0;
    let mut wrong = Vec::new();
    for role in Role::ALL {
        // "alpha" and "beta" have no exceptions in the shipped policy.
        let p = principal("someone", "alpha", role);
        for obj in object::ALL {
            for act in action::ALL {
                for (in_tenant, own) in [("alpha", true), ("beta", false)] {
                    let want = expected(role, obj, act, own);
                    let d = authz.decide_in(&p, &tenant(in_tenant), obj, act);
                    if own {
                        assert_eq!(d, authz.decide(&p, obj, act), "decide is decide_in own");
                    }
                    if d.allowed != want {
                        wrong.push(format!(
                            "{role} {obj} {act} in {in_tenant}: got {} ({}), want {want}",
                            d.allowed, d.policy
                        ));
                    }
                    if d.allowed {
                        assert!(
                            d.policy.starts_with("policy.csv:") && d.policy.contains(" p, "),
                            "the audit record names the rule: {}",
                            d.policy
                        );
                    } else {
                        assert_eq!(d.policy, "default deny");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 8 * 2 * 2);
    assert!(
        wrong.is_empty(),
        "decisions differ from the table:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test]
async fn the_rule_that_allowed_is_named_with_its_line() {
    let authz = shipped().await;
    let d = authz.decide(
        &principal("v", "alpha", Role::Viewer),
        object::METRICS,
        action::READ,
    );
    assert!(d.allowed);
    let text = std::fs::read_to_string(policies().join("policy.csv")).expect("policy");
    let line = text
        .lines()
        .position(|l| l.trim() == "p, viewer, *, metrics, read")
        .expect("viewer rule")
        + 1;
    assert_eq!(
        d.policy,
        format!("policy.csv:{line}: p, viewer, *, metrics, read (as viewer)")
    );
}

#[tokio::test]
async fn per_tenant_exceptions_hold_only_where_granted() {
    let authz = shipped().await;
    // physics admins read usage; admins elsewhere do not.
    let physics_admin = principal("pa", "physics", Role::Admin);
    assert!(
        authz
            .decide(&physics_admin, object::USAGE, action::READ)
            .allowed
    );
    assert!(
        !authz
            .decide(&physics_admin, object::USAGE, action::WRITE)
            .allowed
    );
    let alpha_admin = principal("pa", "alpha", Role::Admin);
    assert!(
        !authz
            .decide(&alpha_admin, object::USAGE, action::READ)
            .allowed
    );

    // carol, a viewer of chemistry, is an admin there: clear names.
    let carol = principal("carol", "chemistry", Role::Viewer);
    let d = authz.decide(&carol, object::METRICS_CLEAR_NAMES, action::READ);
    assert!(d.allowed, "{d:?}");
    assert!(
        d.policy.ends_with("(as principal:chemistry/carol)"),
        "{}",
        d.policy
    );
    // Another viewer of chemistry is not, nor is a "carol" of another tenant.
    let dave = principal("dave", "chemistry", Role::Viewer);
    assert!(
        !authz
            .decide(&dave, object::METRICS_CLEAR_NAMES, action::READ)
            .allowed
    );
    let other_carol = principal("carol", "physics", Role::Viewer);
    assert!(
        !authz
            .decide(&other_carol, object::METRICS_CLEAR_NAMES, action::READ)
            .allowed
    );
    assert!(
        !authz
            .decide_in(
                &other_carol,
                &tenant("chemistry"),
                object::METRICS,
                action::READ
            )
            .allowed,
        "the same id in another tenant is another principal"
    );

    // The partner NOC of tenant ops views chemistry, and nothing more there or elsewhere.
    let noc = principal("partner-noc", "ops", Role::Viewer);
    let chem = tenant("chemistry");
    assert!(
        authz
            .decide_in(&noc, &chem, object::METRICS, action::READ)
            .allowed
    );
    assert!(
        !authz
            .decide_in(&noc, &chem, object::METRICS_CLEAR_NAMES, action::READ)
            .allowed
    );
    assert!(
        !authz
            .decide_in(&noc, &tenant("physics"), object::METRICS, action::READ)
            .allowed
    );
    assert!(
        authz.decide(&noc, object::METRICS, action::READ).allowed,
        "its own viewer role"
    );

    // An operator's role is bound in its own tenant only.
    let op = principal("op", "ops", Role::Operator);
    assert!(authz.decide(&op, object::METRICS_ALL, action::READ).allowed);
    assert!(
        !authz
            .decide_in(&op, &chem, object::PII_LOOKUP, action::READ)
            .allowed
    );
}

#[tokio::test]
async fn unknown_or_malformed_requests_are_denied() {
    let authz = shipped().await;
    let op = principal("op", "ops", Role::Operator);
    // Operators hold `*`, but only plain names reach the matcher.
    for (obj, act) in [
        ("", "read"),
        ("metrics", ""),
        ("métrics", "read"),
        ("metrics*", "read"),
        ("Metrics", "read"),
        ("metrics", "read write"),
    ] {
        let d = authz.decide(&op, obj, act);
        assert!(!d.allowed, "{obj:?} {act:?}");
        assert_eq!(d.policy, "default deny");
    }
    let viewer = principal("v", "alpha", Role::Viewer);
    assert!(!authz.decide(&viewer, "nonexistent", action::READ).allowed);
    assert!(!authz.decide(&viewer, object::METRICS, "delete").allowed);
}

struct Files {
    _dir: tempfile::TempDir,
    model: PathBuf,
    policy: PathBuf,
}

fn copy_of_shipped() -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("model.conf");
    let policy = dir.path().join("policy.csv");
    std::fs::copy(policies().join("model.conf"), &model).expect("copy model");
    std::fs::copy(policies().join("policy.csv"), &policy).expect("copy policy");
    Files {
        _dir: dir,
        model,
        policy,
    }
}

fn invalid(e: AuthzError) -> (PathBuf, usize, String) {
    let shown = e.to_string();
    match e {
        AuthzError::Invalid {
            path,
            line,
            message,
        } => {
            assert!(
                shown.starts_with(&format!("{}:{line}: ", path.display())),
                "{shown}"
            );
            (path, line, message)
        }
        other => panic!("expected Invalid, got {other}"),
    }
}

#[tokio::test]
async fn bad_files_are_refused_naming_the_file_and_line() {
    let model = "[request_definition]\nr = sub, dom, obj, act\n\n[policy_definition]\np = sub, dom, obj, act\n\n[role_definition]\ng = _, _, _\n\n[policy_effect]\ne = some(where (p.eft == allow))\n\n[matchers]\nm = g(r.sub, p.sub, r.dom) && keyMatch(r.dom, p.dom) && keyMatch(r.obj, p.obj) && keyMatch(r.act, p.act)\n";
    let good_policy = "p, viewer, *, metrics, read\n";
    let cases: [(&str, String, &str, usize, &str); 9] = [
        (
            "model",
            model.replace("keyMatch(r.obj, p.obj)", "regexMatch(r.obj, p.obj)"),
            good_policy,
            14,
            "regexMatch",
        ),
        (
            "model",
            model.replace("g = _, _, _", "g = _, _"),
            good_policy,
            8,
            "g = _, _, _",
        ),
        (
            "model",
            model.replace("[matchers]", "[matcher]"),
            good_policy,
            13,
            "unknown section",
        ),
        (
            "model",
            model.replace("p.eft == allow", "p.eft == deny"),
            good_policy,
            11,
            "needs `e = some",
        ),
        (
            "model",
            model.replace("keyMatch(r.act, p.act)", "keyMatch(r.act, p.nope)"),
            good_policy,
            14,
            "casbin",
        ),
        (
            "policy",
            model.to_owned(),
            "# ok\np, viewer, *, metrics, read\np, viewr, *, metrics, read\n",
            3,
            "role",
        ),
        (
            "policy",
            model.to_owned(),
            "p, viewer, *, metrix, read\n",
            1,
            "unknown object",
        ),
        (
            "policy",
            model.to_owned(),
            "p, viewer, *, metrics\n",
            1,
            "4 fields",
        ),
        (
            "policy",
            model.to_owned(),
            "\ng, principal:a/b, admin, *\n",
            2,
            "tenant id",
        ),
    ];
    for (which, model_text, policy_text, line, says) in cases {
        let f = copy_of_shipped();
        std::fs::write(&f.model, &model_text).expect("write");
        std::fs::write(&f.policy, policy_text).expect("write");
        let e = Authorizer::load(&f.model, &f.policy)
            .await
            .expect_err(&format!("{which} should be refused: {says}"));
        let (path, got_line, message) = invalid(e);
        let want_path = if which == "model" {
            &f.model
        } else {
            &f.policy
        };
        assert_eq!(&path, want_path, "{says}: {message}");
        assert_eq!(got_line, line, "{says}: {message}");
        assert!(
            message.contains(says),
            "{message:?} should mention {says:?}"
        );
    }

    let f = copy_of_shipped();
    std::fs::remove_file(&f.policy).expect("rm");
    match Authorizer::load(&f.model, &f.policy).await {
        Err(e @ AuthzError::Read { .. }) => {
            assert!(e.to_string().contains("policy.csv"), "{e}")
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_reload_keeps_the_old_policy_deciding() {
    let f = copy_of_shipped();
    let authz = Authorizer::load(&f.model, &f.policy).await.expect("load");
    let viewer = principal("v", "alpha", Role::Viewer);
    let before = authz.fingerprint();
    assert!(authz.decide(&viewer, object::METRICS, action::READ).allowed);

    std::fs::write(
        &f.policy,
        "p, viewer, *, metrics, read\np, nobody, *, *, *\n",
    )
    .expect("write");
    let e = authz.reload().await.expect_err("bad policy refused");
    let (path, line, _) = invalid(e);
    assert_eq!((path, line), (f.policy.clone(), 2));
    assert_eq!(authz.fingerprint(), before);
    assert!(authz.decide(&viewer, object::METRICS, action::READ).allowed);
    assert!(
        authz
            .decide(
                &principal("o", "ops", Role::Operator),
                object::ADMIN,
                action::WRITE
            )
            .allowed
    );

    std::fs::write(&f.model, "[matchers]\nm = regexMatch(r.obj, p.obj)\n").expect("write");
    assert!(authz.reload().await.is_err());
    assert!(authz.decide(&viewer, object::METRICS, action::READ).allowed);
}

#[tokio::test]
async fn a_changed_policy_takes_effect_on_reload() {
    let f = copy_of_shipped();
    let authz = Authorizer::load(&f.model, &f.policy).await.expect("load");
    let viewer = principal("v", "alpha", Role::Viewer);
    let billing = principal("b", "alpha", Role::Billing);
    assert!(authz.decide(&viewer, object::METRICS, action::READ).allowed);
    assert!(
        !authz
            .decide(&billing, object::METRICS, action::READ)
            .allowed
    );
    let before = authz.fingerprint();

    // Viewers lose /metrics; billing gains it in alpha only.
    let text = std::fs::read_to_string(&f.policy).expect("read");
    let text =
        text.replace("p, viewer, *, metrics, read\n", "") + "p, billing, alpha, metrics, read\n";
    std::fs::write(&f.policy, text).expect("write");
    authz.reload().await.expect("reload");

    assert_ne!(authz.fingerprint(), before);
    assert!(!authz.decide(&viewer, object::METRICS, action::READ).allowed);
    assert!(
        authz
            .decide(&billing, object::METRICS, action::READ)
            .allowed
    );
    let beta_billing = principal("b", "beta", Role::Billing);
    assert!(
        !authz
            .decide(&beta_billing, object::METRICS, action::READ)
            .allowed
    );
}
