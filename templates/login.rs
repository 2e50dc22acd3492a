//! `/login` and `/logout`.

use maud::{html, Markup};

use super::layout::{page, Nav};
use super::Ctx;

/// The login form. `token` is the login form's CSRF token (also set as a cookie);
/// `next` is where to go after logging in.
pub fn login(ctx: &Ctx, token: &str, next: &str, error: Option<&str>) -> Markup {
    page(
        ctx,
        "Admin log in",
        Nav::Login,
        html! {
            section.narrow {
                h1 { "Admin log in" }
                @if !ctx.login_enabled {
                    p.empty {
                        "No admin password is configured. Set one with "
                        code { "hygrocast admin set-password" } " and restart."
                    }
                } @else {
                    p.muted { "The admin can retrain, promote and roll back models from these pages." }
                    @if let Some(e) = error { p.error-text role="alert" { (e) } }
                    form.stack method="post" action=(ctx.url("/login")) {
                        input type="hidden" name="csrf" value=(token);
                        input type="hidden" name="next" value=(next);
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required autofocus;
                        button.primary type="submit" { "Log in" }
                    }
                }
            }
        },
    )
}

/// Asks to confirm logging out (a POST, so that a link elsewhere cannot log you out).
pub fn logout(ctx: &Ctx) -> Markup {
    page(
        ctx,
        "Log out",
        Nav::None,
        html! {
            section.narrow {
                h1 { "Log out" }
                form method="post" action=(ctx.url("/logout")) {
                    (ctx.csrf_field())
                    button.primary type="submit" { "Log out" }
                }
            }
        },
    )
}
