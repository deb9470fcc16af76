fn main() {
    // Only the JS binding needs the napi link setup.
    if std::env::var_os("CARGO_FEATURE_BINDING").is_some() {
        napi_build::setup();
    }
}
