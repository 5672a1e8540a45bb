//! iamfs(1), generated from the clap definition (`iamfs --man`).

pub fn render(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let _ = out;
    Ok(())
}
