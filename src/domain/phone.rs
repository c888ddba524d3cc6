//! Phone numbers of service records: mainland mobile numbers, normalized before they are
//! hashed or encrypted, so that `+86 138-0013-8000` and `13800138000` are one person.

/// The number as 11 digits, or why it is not a mainland mobile number.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let digits: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '\u{3000}'))
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .or_else(|| {
            (digits.len() == 13)
                .then(|| digits.strip_prefix("86"))
                .flatten()
        })
        .unwrap_or(&digits);
    let b = digits.as_bytes();
    let ok = b.len() == 11
        && b.iter().all(u8::is_ascii_digit)
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1]);
    if ok {
        Ok(digits.to_string())
    } else {
        Err("手机号码格式不正确（须为11位大陆手机号）")
    }
}

/// A number as logs and screens may show it: `138****8000`.
pub fn masked(normalized: &str) -> String {
    if normalized.len() == 11 {
        format!("{}****{}", &normalized[..3], &normalized[7..])
    } else {
        "***".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_people_write_are_one_number() {
        for form in [
            "13800138000",
            "138 0013 8000",
            "+86 138-0013-8000",
            "008613800138000",
            "8613800138000",
        ] {
            assert_eq!(normalize(form), Ok("13800138000".to_string()), "{form}");
        }
        for bad in [
            "",
            "1380013800",
            "23800138000",
            "12800138000",
            "1380013800x",
            "0571-88888888",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
        assert_eq!(masked("13800138000"), "138****8000");
    }
}
