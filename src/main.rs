//! `iamfs [OPTIONS] <MOUNTPOINT>`: mounts, and returns once the mount answers.

use std::io::{PipeWriter, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use iamfs::cli::{Cli, Command, Options};
use iamfs::fuse::FuseAdapter;
use iamfs::iam::layer::Layer;
use iamfs::iam::sdk::SdkIam;
use iamfs::iam::Iam;
use iamfs::mount_options::{self, MountPlan};
use iamfs::namespace::{Namespace, Settings};
use iamfs::platform;
use iamfs::session::{self, Base, DaemonCredentials};
use iamfs::vfs::Fs;

/// How long to wait for the credential chain before giving up on the mount.
const CREDENTIALS_TIMEOUT: Duration = Duration::from_secs(15);

fn main() -> ExitCode {
    let cli = Cli::parse_from(iamfs::cli::helper_args(std::env::args_os().collect()));
    if let Some(shell) = cli.completions {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "iamfs", &mut script);
        return match std::io::stdout().write_all(&script) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    if cli.man {
        return match iamfs::manpage::render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("iamfs: writing the man page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Status(args)) = cli.command {
        return iamfs::status_cmd::run(&args);
    }
    let Some(mut options) = cli.mount else {
        eprintln!("iamfs: give a mountpoint: iamfs [OPTIONS] <MOUNTPOINT> (see iamfs --help)");
        return ExitCode::FAILURE;
    };
    let plan = match mount_options::resolve(&mut options) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("iamfs: {message}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(message) = check_mountpoint(&options) {
        eprintln!("iamfs: {message}");
        return ExitCode::FAILURE;
    }
    if options.foreground {
        init_logging(&options, true);
        return finish(run(options, plan, None), true);
    }
    // Fork before any thread exists; the parent waits for the child's word.
    let (mut read_end, write_end) = match std::io::pipe() {
        Ok(ends) => ends,
        Err(e) => {
            eprintln!("iamfs: pipe failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: single-threaded here; the child only continues into `run`.
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("iamfs: fork failed: {}", std::io::Error::last_os_error());
            ExitCode::FAILURE
        }
        0 => {
            drop(read_end);
            // The child leaves the caller's session and terminal once it has
            // its credentials (an MFA prompt needs the terminal).
            init_logging(&options, false);
            // The parent prints the error it is sent.
            finish(run(options, plan, Some(write_end)), false)
        }
        _ => {
            drop(write_end);
            let mut answer = String::new();
            let _ = read_end.read_to_string(&mut answer);
            match answer.strip_prefix("ok") {
                Some(_) => ExitCode::SUCCESS,
                None if answer.is_empty() => {
                    eprintln!("iamfs: the daemon exited before the mount was ready");
                    ExitCode::FAILURE
                }
                None => {
                    eprintln!("iamfs: {answer}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn finish(result: Result<(), String>, print: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if print {
                eprintln!("iamfs: {message}");
            }
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn check_mountpoint(options: &Options) -> Result<(), String> {
    let path = options.mountpoint();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("mountpoint {} is not a directory", path.display())),
        Err(e)
            if e.raw_os_error()
                .is_some_and(|n| platform::DEAD_MOUNT_ERRNOS.contains(&n)) =>
        {
            // An iamfs whose daemon died (kill -9, a crash) left its mount.
            match iamfs::mountpoint::recover_dead_mount(path) {
                Ok(()) => {
                    eprintln!(
                        "iamfs: {} was the mount of an iamfs that is no longer running; unmounted it",
                        path.display()
                    );
                    check_mountpoint(options)
                }
                Err(why) => Err(format!(
                    "mountpoint {}: {e}: a FUSE mount whose daemon has exited ({why}); \
                     {}, then mount again",
                    path.display(),
                    platform::manual_unmount_hint(path)
                )),
            }
        }
        Err(e) => Err(format!("mountpoint {}: {e}", path.display())),
    }
}

fn init_logging(options: &Options, foreground: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match &options.log_file {
        Some(path) => {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(file) => builder.with_ansi(false).with_writer(Arc::new(file)).init(),
                Err(e) => {
                    eprintln!("iamfs: cannot open log file {}: {e}", path.display());
                    builder.with_writer(std::io::stderr).init();
                }
            }
        }
        None if foreground => builder.with_writer(std::io::stderr).init(),
        None => builder.with_writer(std::io::sink).init(),
    }
}

/// Sends the parent the outcome of mounting (daemon mode), once.
fn report(ready: &mut Option<PipeWriter>, outcome: Result<(), &str>) {
    if let Some(mut pipe) = ready.take() {
        let _ = match outcome {
            Ok(()) => pipe.write_all(b"ok"),
            Err(message) => pipe.write_all(message.as_bytes()),
        };
    }
}

fn run(options: Options, plan: MountPlan, mut ready: Option<PipeWriter>) -> Result<(), String> {
    let result = mount_and_serve(&options, plan, &mut ready);
    if let Err(message) = &result {
        report(&mut ready, Err(message));
    }
    result
}

fn mount_and_serve(
    options: &Options,
    plan: MountPlan,
    ready: &mut Option<PipeWriter>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;

    let (sdk_config, credentials) = runtime.block_on(load_aws_config(options))?;
    if ready.is_some() {
        // SAFETY: the daemon leaves the caller's session and terminal.
        unsafe { libc::setsid() };
    }
    let endpoint = options
        .endpoint_url
        .clone()
        .unwrap_or_else(|| "https://iam.amazonaws.com".into());
    let region = sdk_config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    // Errors about the daemon's own credentials say how to renew them.
    let iam: Arc<dyn Iam> = Arc::new(Layer::wrap(
        Arc::new(SdkIam::new(&sdk_config)),
        session::CredentialsHook(credentials.clone()),
    ));
    let namespace = Namespace::new(
        iam,
        Settings {
            endpoint,
            region,
            read_only: options.read_only,
            cache_ttl: Duration::from_secs(options.cache_ttl),
            cache_entries: options.cache_entries,
            session_duration: options.session_duration,
            session_name: iamfs::credentials::session_name(&iamfs::credentials::local_user_name()),
            daemon_credentials: Some(credentials),
        },
    )
    .shared();
    // SAFETY: getuid cannot fail.
    let fs = Fs::new(namespace.clone(), unsafe { libc::getuid() });
    fs.start_pending_deletes(runtime.handle());
    let adapter = FuseAdapter::new(fs.clone(), runtime.handle().clone());
    let busy_poll_slot = adapter.busy_poll_slot();

    let mut config = fuser::Config::default();
    config.mount_options = plan.options;
    config.acl = plan.acl;
    // One thread reads the device: the work of a request that has to wait
    // runs on tokio, and a second reader would be woken for every request
    // that the polling one is about to take.
    config.n_threads = Some(1);

    let mut session = fuser::Session::new(adapter, options.mountpoint(), &config)
        .map_err(|e| mount_refused(options, &e))?;
    FuseAdapter::set_notifier(&fs, session.notifier());
    // Held until the session ends: dropping it stops the watcher.
    let busy_poll = {
        use std::os::fd::AsFd;
        platform::start_busy_poll(session.as_fd(), options.busy_poll)
    };
    if let Some(poll) = &busy_poll {
        let _ = busy_poll_slot.set(poll.handle());
    }
    tracing::info!(
        mountpoint = %options.mountpoint().display(),
        platform = platform::NAME,
        busy_poll = busy_poll.is_some(),
        "mounted"
    );
    // The handlers are in place before anyone hears that the mount is up:
    // a SIGTERM right after `iamfs` returns (or after READY=1) unmounts.
    let (mut term, mut interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        let _context = runtime.enter();
        (
            signal(SignalKind::terminate()).map_err(|e| format!("SIGTERM handler: {e}"))?,
            signal(SignalKind::interrupt()).map_err(|e| format!("SIGINT handler: {e}"))?,
        )
    };
    let mut unmounter = session.unmount_callable();
    runtime.spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("signal received: unmounting");
        platform::notify_stopping();
        if let Err(e) = unmounter.unmount() {
            tracing::error!("unmount failed: {e}");
        }
    });
    report(ready, Ok(()));
    platform::notify_ready(&format!("mounted at {}", options.mountpoint().display()));
    if !options.foreground {
        detach_stdio();
    }
    let served = session
        .run()
        .map_err(|e| format!("the FUSE session ended with an error: {e}"));
    tracing::info!("unmounted");
    // Unmounted from outside (umount, fusermount3 -u) or after a signal.
    platform::notify_stopping();
    // An rm still inside its grace is carried out before the daemon exits.
    let settled =
        runtime
            .block_on(namespace.settle_pending_deletes(
                std::time::Instant::now() + iamfs::namespace::UNLINK_GRACE,
            ));
    if !settled.is_empty() {
        tracing::info!(
            count = settled.len(),
            "pending deletes carried out at unmount"
        );
    }
    served?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Why the kernel or fusermount3 refused the mount, with what to do.
fn mount_refused(options: &Options, e: &std::io::Error) -> String {
    let at = options.mountpoint().display();
    // SAFETY: getuid cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if e.kind() != std::io::ErrorKind::PermissionDenied || root {
        return format!("cannot mount at {at}: {e}");
    }
    let allow = if options.allow_other {
        "; allow_other also needs `user_allow_other` in /etc/fuse.conf"
    } else {
        ""
    };
    format!(
        "cannot mount at {at}: {e}: fusermount3 mounts only on a directory you own and \
         can write: mount as its owner (an fstab line with `user`, then `mount {at}` as \
         that user), or as root{allow}"
    )
}

/// The daemon lets go of the terminal once the mount is up.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// A profile named on the command line, in fstab or by AWS_PROFILE must
/// exist: otherwise the credential chain's many-line refusal would not
/// name it.
async fn check_profile(name: &str) -> Result<(), String> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    if name == "default" {
        return Ok(());
    }
    let set = aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        Some(std::borrow::Cow::Owned(name.to_string())),
    )
    .await;
    if set.is_ok_and(|s| s.get_profile(name).is_some()) {
        return Ok(());
    }
    let config = std::env::var("AWS_CONFIG_FILE").unwrap_or_else(|_| "~/.aws/config".into());
    let credentials = std::env::var("AWS_SHARED_CREDENTIALS_FILE")
        .unwrap_or_else(|_| "~/.aws/credentials".into());
    Err(format!(
        "profile `{name}` is in neither {config} nor {credentials} (for this user, \
         uid {}): add it (`aws configure --profile {name}`) or name another one",
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    ))
}

/// The SDK's configuration, with the daemon's credentials: the credential
/// chain, or an MFA session (a code asked at the terminal or of
/// `--mfa-command`, or none yet: then `.iamfs/mfa` takes one).
async fn load_aws_config(
    options: &Options,
) -> Result<(aws_config::SdkConfig, Arc<DaemonCredentials>), String> {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(8))
        .operation_timeout(Duration::from_secs(20))
        .build();
    let loader_for = |profile: Option<&str>| {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).timeout_config(timeouts.clone());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader
    };
    let with_region = |config: aws_config::SdkConfig| {
        if config.region().is_none() {
            // IAM is global; STS needs some region to sign for.
            config
                .into_builder()
                .region(Region::new("us-east-1"))
                .build()
        } else {
            config
        }
    };
    let mount = std::fs::canonicalize(options.mountpoint())
        .unwrap_or_else(|_| options.mountpoint().to_path_buf())
        .display()
        .to_string();
    if let Some(profile) = &options.profile {
        check_profile(profile).await?;
    }
    let session_name = iamfs::credentials::session_name(&iamfs::credentials::local_user_name());
    let (plan, origin) = session::plan(
        options.profile.as_deref(),
        options.mfa_serial.as_deref(),
        options.mfa_duration,
        &session_name,
    )
    .await?;
    let config = with_region(loader_for(options.profile.as_deref()).load().await);
    let check = |provider: SharedCredentialsProvider, what: String| async move {
        match tokio::time::timeout(CREDENTIALS_TIMEOUT, provider.provide_credentials()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!(
                "no AWS credentials found{what} ({}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
                 use --profile, or log in with `aws sso login`",
                iamfs::iam::sdk::error_chain(&e)
            )),
            Err(_) => Err("timed out looking for AWS credentials".into()),
        }
    };
    let credentials = match plan {
        None => {
            let chain = config
                .credentials_provider()
                .ok_or("no AWS credentials provider is configured")?;
            check(chain.clone(), String::new()).await?;
            DaemonCredentials::chain(chain, origin, mount)
        }
        Some(plan) => {
            let provider = |p: SharedCredentialsProvider| {
                config
                    .clone()
                    .into_builder()
                    .credentials_provider(p)
                    .build()
            };
            let base = match &plan.base {
                Base::Chain => config.clone(),
                Base::Profile(source) => with_region(loader_for(Some(source)).load().await),
                Base::Environment => provider(SharedCredentialsProvider::new(
                    aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
                )),
                Base::Ec2InstanceMetadata => provider(SharedCredentialsProvider::new(
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder().build(),
                )),
                Base::EcsContainer => provider(SharedCredentialsProvider::new(
                    aws_config::ecs::EcsCredentialsProvider::builder().build(),
                )),
            };
            let base_provider = base
                .credentials_provider()
                .ok_or("no AWS credentials provider is configured")?;
            check(
                base_provider,
                format!(" to ask for the MFA session of {} with", plan.serial),
            )
            .await?;
            let serial = plan.serial.clone();
            let credentials = DaemonCredentials::mfa(
                plan,
                &base,
                options.mfa_command.clone(),
                origin,
                mount.clone(),
            );
            let code = match &options.mfa_command {
                Some(command) => {
                    let command = command.clone();
                    Some(
                        tokio::task::spawn_blocking(move || session::run_command(&command))
                            .await
                            .map_err(|e| format!("--mfa-command: {e}"))??,
                    )
                }
                None => session::prompt_code(&serial)
                    .map_err(|e| format!("reading the MFA code: {e}"))?,
            };
            match code {
                Some(code) => credentials
                    .start(&code)
                    .await
                    .map_err(|e| format!("the MFA session for {serial} was refused: {e}"))?,
                None => eprintln!(
                    "iamfs: no MFA code yet (standard input is not a terminal and there is no \
                     --mfa-command): every call fails with EACCES until you write one: \
                     echo CODE > {mount}/.iamfs/mfa"
                ),
            }
            credentials
        }
    };
    let config = config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(session::Shared(
            credentials.clone(),
        )))
        // The daemon's credentials cache themselves (session.rs), so that a
        // refusal by AWS or a new MFA code takes effect at the next call.
        .identity_cache(aws_config::identity::IdentityCache::no_cache())
        .build();
    Ok((config, credentials))
}
