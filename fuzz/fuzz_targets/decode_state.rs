//! Any byte string: decoding a saved client state never panics, and a decoded state
//! re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rotastellar_distributed::core::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok((id, st)) = wire::decode_state(data) {
        assert_eq!(wire::encode_state(&id, &st), data);
    }
});
