//! Every request names this SDK and its version in `User-Agent`, and the application may add
//! its own product after it (`ClientBuilder::user_agent`, `Options::user_agent`).
#![allow(clippy::unwrap_used)]

use std::time::{Instant, SystemTime};

use chat_driver::{Action, Call, Driver, Options};

fn first_request_user_agent(product: Option<&str>) -> String {
    let mut options = Options::new(
        "https://na.api.avayacloud.com",
        "123e4567-e89b-12d3-a456-426614174000",
        "my-appkey",
    );
    // A token whose payload is {"exp":4000000000}.
    options.token = Some("jwt.e30.eyJleHAiOjQwMDAwMDAwMDB9.sig".to_owned());
    options.user_agent = product.map(str::to_owned);
    // Any instant and wall time do: a test plays the clock.
    #[allow(clippy::disallowed_methods)]
    let (now, wall) = (Instant::now(), SystemTime::now());
    let session = options.session(false).unwrap();
    let mut driver: Driver<u32> = Driver::new(now, wall, session, options.capacity);
    driver
        .call(now, Call::Init(None), 1)
        .map_err(|(_, e)| e)
        .unwrap();
    match driver.poll_action() {
        Action::Transmit(request) => {
            let found = request.headers().find(|(k, _)| *k == "User-Agent");
            found.unwrap().1.to_owned()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn requests_name_the_sdk_and_its_version() {
    let ua = first_request_user_agent(None);
    assert_eq!(ua, chat_core::USER_AGENT);
    assert_eq!(ua, format!("axp-chat-rs/{}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_application_adds_its_product_after_the_sdk() {
    let ua = first_request_user_agent(Some("my-app/1.2"));
    assert_eq!(ua, format!("{} my-app/1.2", chat_core::USER_AGENT));
}
