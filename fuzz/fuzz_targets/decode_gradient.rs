//! Any byte string: decoding never panics, never allocates beyond what the input
//! justifies, and whatever decodes re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rotastellar_distributed::core::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = wire::decode(data) {
        assert_eq!(wire::encode(&m), data);
        // At least one bit per value on the wire: nothing larger than the input justifies.
        assert!(m.values.len() <= 8 * data.len());
    }
});
