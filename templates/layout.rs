//! The page frame: head, navigation, footer; and the error page.

use maud::{html, Markup, DOCTYPE};

use super::{asset_version, Ctx};

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Models,
    Login,
    None,
}

/// The hygrocast mark: a drop with a rising line (the same drawing as the favicon).
fn logo() -> Markup {
    html! {
        svg.logo viewBox="0 0 32 32" width="24" height="24" aria-hidden="true" {
            path.drop d="M16 2C16 2 5 14.5 5 20.5a11 11 0 0 0 22 0C27 14.5 16 2 16 2z" {}
            path.rise d="M9.5 22.5l4.5-4 3.5 2.5 5.5-6" {}
        }
    }
}

/// A full page: `title` names what it shows (the sensor, the run…).
pub fn page(ctx: &Ctx, title: &str, nav: Nav, main: Markup) -> Markup {
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · hygrocast" }
                link rel="stylesheet" href=(ctx.url(&format!("/static/style.css?v={}", asset_version())));
                link rel="icon" type="image/svg+xml" href=(ctx.url(&format!("/favicon.svg?v={}", asset_version())));
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    nav.bar aria-label="Main" {
                        a.brand href=(ctx.url("/")) { (logo()) span { "hygrocast" } }
                        ul {
                            li { a href=(ctx.url("/")) aria-current=[current(Nav::Dashboard)] { "Dashboard" } }
                            li { a href=(ctx.url("/models")) aria-current=[current(Nav::Models)] { "Models" } }
                            @if ctx.admin.is_some() {
                                li {
                                    form.inline method="post" action=(ctx.url("/logout")) {
                                        (ctx.csrf_field())
                                        button.link type="submit" { "Log out" }
                                    }
                                }
                            } @else if ctx.login_enabled {
                                li { a href=(ctx.url("/login")) aria-current=[current(Nav::Login)] { "Admin log in" } }
                            }
                        }
                    }
                }
                main #main { (main) }
                footer.site {
                    p {
                        "Times in " (ctx.tz.name()) ". "
                        @if ctx.admin.is_some() { "Logged in as admin. " }
                        "hygrocast " (env!("CARGO_PKG_VERSION"))
                    }
                }
            }
        }
    }
}

/// An error page (404, 403, …) in the same frame, with a way back.
pub fn error_page(ctx: &Ctx, status: u16, heading: &str, message: &str) -> Markup {
    page(
        ctx,
        heading,
        Nav::None,
        html! {
            section.error {
                h1 { (heading) }
                p.status { "HTTP " (status) }
                p { (message) }
                p { a href=(ctx.url("/")) { "Back to the dashboard" } }
            }
        },
    )
}
