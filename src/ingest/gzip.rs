//! Request-body decoding with a hard cap on the decoded size.

use std::io::Read;

use flate2::read::MultiGzDecoder;

use super::IngestError;

/// Decodes `bytes` according to `Content-Encoding`, never producing more than `max_len`
/// bytes.
///
/// A gzip bomb (kilobytes that inflate to gigabytes) is stopped by reading through
/// `Read::take(max_len + 1)`: at most one byte over the limit is ever inflated, so memory
/// and CPU stay bounded by `max_len` whatever the compression ratio. `MultiGzDecoder`
/// accepts concatenated gzip members, which some clients produce when streaming.
pub fn decode_body(
    bytes: &[u8],
    content_encoding: Option<&str>,
    max_len: usize,
) -> Result<Vec<u8>, IngestError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        if bytes.len() > max_len {
            return Err(too_large(max_len));
        }
        return Ok(bytes.to_vec());
    }
    if !(encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip")) {
        return Err(IngestError::UnsupportedEncoding(format!(
            "unsupported Content-Encoding '{}' (supported: gzip, identity)",
            super::error::snippet(encoding)
        )));
    }
    // Compressed data is at most slightly larger than its decoded form (stored blocks
    // add 5 bytes per 64 KiB, headers ~20), so a body much larger than the limit cannot
    // decode within it: refuse it without spending CPU on inflating.
    if bytes.len() > max_len.saturating_add(max_len / 64).saturating_add(1024) {
        return Err(too_large(max_len));
    }
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::Malformed(format!("invalid gzip body: {e}")))?;
    if out.len() > max_len {
        return Err(too_large(max_len));
    }
    Ok(out)
}

fn too_large(max_len: usize) -> IngestError {
    IngestError::TooLarge(format!("request body exceeds {max_len} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    use std::time::Instant;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn identity_passes_through() {
        assert_eq!(decode_body(b"abc", None, 10).unwrap(), b"abc");
        assert_eq!(decode_body(b"abc", Some("identity"), 3).unwrap(), b"abc");
        assert_eq!(decode_body(b"abc", Some(" IDENTITY "), 3).unwrap(), b"abc");
        assert_eq!(decode_body(b"abc", Some(""), 3).unwrap(), b"abc");
        let e = decode_body(b"abcd", None, 3).unwrap_err();
        assert_eq!(e.reason(), "too_large");
    }

    #[test]
    fn gzip_round_trip() {
        let data = b"m value=54.2 1764000000000000000\n".repeat(100);
        let z = gz(&data);
        assert_eq!(decode_body(&z, Some("gzip"), data.len()).unwrap(), data);
        assert_eq!(decode_body(&z, Some("GZIP"), data.len()).unwrap(), data);
        assert_eq!(decode_body(&z, Some("x-gzip"), data.len()).unwrap(), data);
        let e = decode_body(&z, Some("gzip"), data.len() - 1).unwrap_err();
        assert_eq!(e.reason(), "too_large");
        assert_eq!(e.kind().http_status(), 413);
    }

    #[test]
    fn concatenated_members() {
        let mut z = gz(b"hello ");
        z.extend(gz(b"world"));
        assert_eq!(decode_body(&z, Some("gzip"), 100).unwrap(), b"hello world");
    }

    #[test]
    fn empty_gzip() {
        assert!(decode_body(&gz(b""), Some("gzip"), 10).unwrap().is_empty());
    }

    #[test]
    fn corrupt_gzip_is_bad_request() {
        let e = decode_body(b"not gzip at all", Some("gzip"), 100).unwrap_err();
        assert_eq!(e.reason(), "malformed");
        let mut z = gz(&b"x".repeat(1000));
        let n = z.len();
        z.truncate(n / 2);
        assert!(decode_body(&z, Some("gzip"), 10_000).is_err());
    }

    #[test]
    fn unknown_encoding() {
        for enc in ["br", "deflate", "zstd", "gzip, br"] {
            let e = decode_body(b"x", Some(enc), 10).unwrap_err();
            assert_eq!(e.reason(), "unsupported_encoding", "{enc}");
            assert_eq!(e.kind().http_status(), 415);
        }
    }

    #[test]
    fn compressed_body_over_limit_is_refused_before_inflating() {
        // Incompressible (pseudo-random) data: the gzip is larger than the limit.
        let mut x: u32 = 1;
        let data: Vec<u8> = (0..5000)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 24) as u8
            })
            .collect();
        let z = gz(&data);
        assert!(z.len() > 2100);
        let e = decode_body(&z, Some("gzip"), 1000).unwrap_err();
        assert_eq!(e.reason(), "too_large");
    }

    #[test]
    fn gzip_bomb_is_refused_fast() {
        // 100 MB of zeros, compressed in chunks so the test never holds 100 MB itself.
        let mut e = GzEncoder::new(Vec::new(), Compression::best());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..100 {
            e.write_all(&chunk).unwrap();
        }
        let bomb = e.finish().unwrap();
        assert!(bomb.len() < 200_000, "bomb is {} bytes", bomb.len());

        let max = 1 << 20;
        let started = Instant::now();
        let err = decode_body(&bomb, Some("gzip"), max).unwrap_err();
        assert_eq!(err.reason(), "too_large");
        // Inflating only ~1 MiB takes milliseconds; inflating 100 MB would take far longer
        // and allocate it all.
        assert!(
            started.elapsed().as_millis() < 500,
            "took {:?}",
            started.elapsed()
        );
    }
}
