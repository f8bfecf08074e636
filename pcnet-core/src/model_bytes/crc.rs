//! CRC-32 (IEEE 802.3, zlib's), the trailer of every model.

/// CRC-32 lookup table (reflected polynomial `0xEDB88320`), computed at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32 of `bytes` as zlib's `crc32` and IEEE 802.3 compute it (reflected polynomial
/// `0xEDB88320`, initial value and final xor `0xFFFFFFFF`).
///
/// ```
/// assert_eq!(pcnet_core::model_bytes::crc32(b"123456789"), 0xCBF4_3926);
/// ```
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ byte as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}
