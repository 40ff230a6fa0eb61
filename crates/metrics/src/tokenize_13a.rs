//! sacreBLEU's default `13a` tokenizer (the mteval-v13a rules).

/// Tokenizes one line as `sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a` does.
pub fn tokenize_13a(line: &str) -> Vec<String> {
    let mut s = line.replace("<skipped>", "").replace("-\n", "").replace('\n', " ");
    if s.contains('&') {
        s = s.replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {s} ").chars().collect();
    // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
    let mut a = Vec::with_capacity(chars.len() * 2);
    for &c in &chars {
        if is_symbol(c) {
            a.extend([' ', c, ' ']);
        } else {
            a.push(c);
        }
    }
    let digit = |c: char| c.is_ascii_digit();
    let period_comma = |c: char| c == '.' || c == ',';
    // ([^0-9])([\.,]) -> "\1 \2 "
    let b = pair_sub(&a, |x| !digit(x), period_comma, |x, y| vec![x, ' ', y, ' ']);
    // ([\.,])([^0-9]) -> " \1 \2"
    let c = pair_sub(&b, period_comma, |y| !digit(y), |x, y| vec![' ', x, ' ', y]);
    // ([0-9])(-) -> "\1 \2 "
    let d = pair_sub(&c, digit, |y| y == '-', |x, y| vec![x, ' ', y, ' ']);
    let text: String = d.into_iter().collect();
    text.split_whitespace().map(str::to_string).collect()
}

/// `[\{-\~\[-\` -\&\(-\+\:-\@\/]`
fn is_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

/// Leftmost, non-overlapping substitution of a two-character pattern, as `re.sub`.
fn pair_sub(
    s: &[char],
    first: impl Fn(char) -> bool,
    second: impl Fn(char) -> bool,
    repl: impl Fn(char, char) -> Vec<char>,
) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        if i + 1 < s.len() && first(s[i]) && second(s[i + 1]) {
            out.extend(repl(s[i], s[i + 1]));
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_13a() {
        // sacrebleu.tokenizers.tokenizer_13a.Tokenizer13a()(s) for each s:
        assert_eq!(tokenize_13a("je suis la ."), ["je", "suis", "la", "."]);
        assert_eq!(tokenize_13a("j .r .r ."), ["j", ".", "r", ".", "r", "."]);
        assert_eq!(tokenize_13a("3.5, 4-5 a,b"), ["3.5", ",", "4", "-", "5", "a", ",", "b"]);
        assert_eq!(tokenize_13a("l'eau (x)"), ["l'eau", "(", "x", ")"]);
    }
}
