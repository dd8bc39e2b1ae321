//! A perfectly valid component that is not a Foresight policy.

#[cfg(target_family = "wasm")]
mod component {
    wit_bindgen::generate!({ world: "greeter", path: "wit" });

    struct Greeter;

    impl Guest for Greeter {
        fn greet(name: String) -> String {
            format!("hello, {name}")
        }
    }

    export!(Greeter);
}
