//! URL query strings, decoded one way for every route that reads parameters.

/// The query string is not valid percent-encoded UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEncoding;

/// URL-decodes one query component (`+` is a space, as in HTML forms and Go's `ParseQuery`).
/// Past `max` decoded bytes it stops and returns what it has (lossily): longer than anything
/// the caller accepts, which then refuses it by length.
pub fn url_decode(s: &str, max: usize) -> Result<String, BadEncoding> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len().min(max));
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BadEncoding)?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
        if out.len() > max {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
    }
    String::from_utf8(out).map_err(|_| BadEncoding)
}
