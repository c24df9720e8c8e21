//! A JSON grammar for the property tests, written out by hand, and documents shaped like each
//! sender's format built from it (`properties.rs` uses them).

use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::Index;

// ---------------------------------------------------------------------------------------------
// A JSON grammar, written out by hand.
// ---------------------------------------------------------------------------------------------

/// How one character of a JSON string is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Esc {
    /// As itself (UTF-8), unless JSON requires an escape.
    Raw,
    /// `\n`, `\"`, `\/`… where such an escape exists, else `\uXXXX`.
    Short,
    /// `\u00e9`, surrogate pairs beyond the BMP.
    Lower,
    /// `\u00E9`.
    Upper,
}

/// A JSON string: its characters, each with how it is written.
#[derive(Debug, Clone)]
pub(crate) struct Text(Vec<(char, Esc)>);

impl Text {
    /// `s`, its characters written in the given styles in turn.
    pub(crate) fn styled(s: &str, styles: &[Esc]) -> Self {
        let styles = if styles.is_empty() {
            &[Esc::Raw][..]
        } else {
            styles
        };
        Text(s.chars().zip(styles.iter().copied().cycle()).collect())
    }

    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        let head: Vec<(char, Esc)> = prefix.chars().map(|c| (c, Esc::Raw)).collect();
        self.0.splice(0..0, head);
        self
    }

    pub(crate) fn write(&self, out: &mut String) {
        out.push('"');
        for &(c, esc) in &self.0 {
            let short = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '/' => Some("\\/"),
                '\n' => Some("\\n"),
                '\r' => Some("\\r"),
                '\t' => Some("\\t"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                _ => None,
            };
            let must_escape = c == '"' || c == '\\' || c < ' ';
            match (esc, short) {
                (Esc::Raw, _) if !must_escape => out.push(c),
                (Esc::Raw | Esc::Short, Some(s)) => out.push_str(s),
                (Esc::Upper, _) => unicode_escape(out, c, true),
                _ => unicode_escape(out, c, false),
            }
        }
        out.push('"');
    }
}

pub(crate) fn unicode_escape(out: &mut String, c: char, upper: bool) {
    let mut units = [0u16; 2];
    for u in c.encode_utf16(&mut units) {
        if upper {
            let _ = write!(out, "\\u{u:04X}");
        } else {
            let _ = write!(out, "\\u{u:04x}");
        }
    }
}

/// A JSON value. Numbers are kept as the text to send.
#[derive(Debug, Clone)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(Text),
    Arr(Vec<Json>),
    Obj(Vec<(Text, Json)>),
}

/// Output with whitespace drawn in turn from a pool (`""` included), so that the same document
/// comes compact, indented, with tabs or with CRLF.
pub(crate) struct Out<'a> {
    pub(crate) s: String,
    pub(crate) ws: &'a [&'static str],
    pub(crate) next: usize,
}

impl Out<'_> {
    pub(crate) fn ws(&mut self) {
        if !self.ws.is_empty() {
            self.s.push_str(self.ws[self.next % self.ws.len()]);
            self.next += 1;
        }
    }
}

impl Json {
    pub(crate) fn write(&self, o: &mut Out<'_>) {
        match self {
            Json::Null => o.s.push_str("null"),
            Json::Bool(b) => o.s.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => o.s.push_str(n),
            Json::Str(t) => t.write(&mut o.s),
            Json::Arr(items) => {
                o.s.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        o.ws();
                        o.s.push(',');
                    }
                    o.ws();
                    v.write(o);
                }
                o.ws();
                o.s.push(']');
            }
            Json::Obj(fields) => {
                o.s.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        o.ws();
                        o.s.push(',');
                    }
                    o.ws();
                    k.write(&mut o.s);
                    o.ws();
                    o.s.push(':');
                    o.ws();
                    v.write(o);
                }
                o.ws();
                o.s.push('}');
            }
        }
    }

    /// The whole document, with whitespace around it too.
    pub(crate) fn document(&self, ws: &[&'static str]) -> String {
        let mut o = Out {
            s: String::new(),
            ws,
            next: 0,
        };
        o.ws();
        self.write(&mut o);
        o.ws();
        o.s
    }
}

pub(crate) type Field = (Text, Json);

pub(crate) const WHITESPACE: &[&str] = &["", "", " ", "\n", "\t", "\r\n", "\n    ", "  "];

pub(crate) fn ws_pool() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(WHITESPACE), 1..6)
}

pub(crate) fn esc() -> impl Strategy<Value = Esc> {
    prop_oneof![
        6 => Just(Esc::Raw),
        1 => Just(Esc::Short),
        1 => Just(Esc::Lower),
        1 => Just(Esc::Upper),
    ]
}

/// Characters that JSON must escape or that often trip decoders.
pub(crate) const SPECIAL_CHARS: &[char] = &[
    '\0',
    '"',
    '\\',
    '/',
    '\n',
    '\r',
    '\t',
    '\u{8}',
    '\u{c}',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{a0}',
    '\u{2028}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    'é',
    'ß',
    '中',
    '😀',
    '\u{10ffff}',
];

/// A character and how it is written, from one random word: printable ASCII, special
/// characters, two- and three-byte UTF-8, or any scalar value. (One `u32` per character is much
/// cheaper to generate in a debug build than a union of character strategies.)
pub(crate) fn char_of(n: u32) -> (char, Esc) {
    let esc = match n & 7 {
        0 => Esc::Short,
        1 => Esc::Lower,
        2 => Esc::Upper,
        _ => Esc::Raw,
    };
    let r = n >> 3;
    let v = r / 8;
    let c = match r % 8 {
        0..=2 => char::from(b' ' + (v % 95) as u8),
        3 | 4 => SPECIAL_CHARS[v as usize % SPECIAL_CHARS.len()],
        5 => char::from_u32(0x80 + v % 0x780).unwrap_or('?'),
        6 => char::from_u32(0x800 + v % 0xf800).unwrap_or('\u{fffd}'),
        _ => char::from_u32(v % 0x11_0000).unwrap_or('\u{1f600}'),
    };
    (c, esc)
}

pub(crate) fn text() -> BoxedStrategy<Text> {
    prop::collection::vec(any::<u32>(), 0..10)
        .prop_map(|v| Text(v.into_iter().map(char_of).collect()))
        .boxed()
}

/// A string that is not blank once trimmed (a letter first).
pub(crate) fn nb_text() -> BoxedStrategy<Text> {
    (prop::char::range('a', 'z'), text())
        .prop_map(|(c, t)| t.prefixed(&c.to_string()))
        .boxed()
}

/// `s` written with random escapes.
pub(crate) fn styled(s: String) -> BoxedStrategy<Text> {
    styles().prop_map(move |st| Text::styled(&s, &st)).boxed()
}

pub(crate) fn styles() -> impl Strategy<Value = Vec<Esc>> {
    prop::collection::vec(esc(), 1..4)
}

/// One of `names`, written with random escapes (`"\u0069d"` is the key `id`).
pub(crate) fn key(names: &'static [&'static str]) -> BoxedStrategy<Text> {
    (prop::sample::select(names), styles())
        .prop_map(|(n, st)| Text::styled(n, &st))
        .boxed()
}

/// A key no format knows (`x-…`), for unknown fields that must be tolerated.
pub(crate) fn extra_key() -> BoxedStrategy<Text> {
    text().prop_map(|t| t.prefixed("x-")).boxed()
}

pub(crate) fn digits(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::char::range('0', '9'), len).prop_map(String::from_iter)
}

pub(crate) fn sign() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["", "-"][..])
}

/// A JSON number as written: any `i64`/`u64`, integers past 64 bits, decimals and exponents
/// (all within `f64` range), and odd spellings. (Built without regex strategies, which would
/// parse their pattern for every value.)
pub(crate) fn number() -> BoxedStrategy<String> {
    let exponent = (
        prop::sample::select(&["e", "E"][..]),
        prop::sample::select(&["", "+", "-"][..]),
        0u8..100,
    )
        .prop_map(|(e, s, n)| format!("{e}{s}{n}"));
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (sign(), 1u8..10, digits(18..40)).prop_map(|(s, d, rest)| format!("{s}{d}{rest}")),
        (
            sign(),
            0u32..1_000_000,
            digits(1..18),
            prop::option::of(exponent.clone())
        )
            .prop_map(|(s, m, f, e)| format!("{s}{m}.{f}{}", e.unwrap_or_default())),
        (sign(), 1u32..10_000, exponent).prop_map(|(s, m, e)| format!("{s}{m}{e}")),
        prop::sample::select(
            &[
                "0",
                "-0",
                "0.0",
                "-0.0",
                "1E+2",
                "1e-7",
                "2.2250738585072014e-308",
                "1.7976931348623157e308",
                "9007199254740993",
            ][..]
        )
        .prop_map(str::to_string),
    ]
    .boxed()
}

pub(crate) fn s() -> BoxedStrategy<Json> {
    text().prop_map(Json::Str).boxed()
}
pub(crate) fn nb() -> BoxedStrategy<Json> {
    nb_text().prop_map(Json::Str).boxed()
}
pub(crate) fn s_or_null() -> BoxedStrategy<Json> {
    prop_oneof![3 => s(), 1 => Just(Json::Null)].boxed()
}
pub(crate) fn int() -> BoxedStrategy<Json> {
    any::<i32>().prop_map(|n| Json::Num(n.to_string())).boxed()
}
pub(crate) fn int_or_null() -> BoxedStrategy<Json> {
    prop_oneof![3 => int(), 1 => Just(Json::Null)].boxed()
}
pub(crate) fn boolean() -> BoxedStrategy<Json> {
    any::<bool>().prop_map(Json::Bool).boxed()
}
pub(crate) fn arr(of: BoxedStrategy<Json>) -> BoxedStrategy<Json> {
    prop::collection::vec(of, 0..4).prop_map(Json::Arr).boxed()
}

/// A JSON scalar.
///
/// Free-form places (Kratos `traits`, ABP `Data`, Identus `claims`…) also get numbers past the
/// range of `f64` (`1e400`): valid JSON that serde cannot hold as a number, which hookgate must
/// store untouched all the same.
pub(crate) fn scalar() -> BoxedStrategy<Json> {
    prop_oneof![
        2 => Just(Json::Null),
        2 => any::<bool>().prop_map(Json::Bool),
        2 => number().prop_map(Json::Num),
        2 => text().prop_map(Json::Str),
        1 => huge_number().prop_map(Json::Num),
    ]
    .boxed()
}

/// A number past the range of `f64` either way (`1e400`, `-12.5E+999`, `1e-400`).
pub(crate) fn huge_number() -> impl Strategy<Value = String> {
    (
        sign(),
        1u8..10,
        digits(0..4),
        prop::sample::select(&["e", "E+", "e-"][..]),
        400u16..1000,
    )
        .prop_map(|(s, d, f, e, x)| {
            let f = if f.is_empty() { f } else { format!(".{f}") };
            format!("{s}{d}{f}{e}{x}")
        })
}

/// Any JSON value, nested a few levels.
pub(crate) fn json() -> BoxedStrategy<Json> {
    scalar()
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Arr),
                prop::collection::vec((text(), inner), 0..4).prop_map(Json::Obj),
            ]
        })
        .boxed()
}

/// Every field name of the three formats, for the loose grammar.
pub(crate) const FIELD_NAMES: &[&str] = &[
    // Kratos
    "identity",
    "id",
    "external_id",
    "credentials",
    "schema_id",
    "schema_url",
    "state",
    "state_changed_at",
    "traits",
    "verifiable_addresses",
    "recovery_addresses",
    "metadata_public",
    "metadata_admin",
    "created_at",
    "updated_at",
    "organization_id",
    "region",
    "type",
    "identifiers",
    "config",
    "version",
    "value",
    "verified",
    "via",
    "status",
    "verified_at",
    "break_glass_for_organization",
    // Identus
    "ts",
    "data",
    "walletId",
    "connectionId",
    "thid",
    "label",
    "goalCode",
    "goal",
    "myDid",
    "theirDid",
    "role",
    "invitation",
    "from",
    "invitationUrl",
    "createdAt",
    "updatedAt",
    "metaRetries",
    "metaLastFailure",
    "title",
    "detail",
    "instance",
    "self",
    "kind",
    "recordId",
    "protocolState",
    "credentialFormat",
    "subjectId",
    "validityPeriod",
    "claims",
    "automaticIssuance",
    "credential",
    "issuingDID",
    "presentationId",
    "proofs",
    "schemaId",
    "trustIssuers",
    "requestData",
    "disclosedClaims",
    "did",
    "longFormDid",
    // ABP
    "Id",
    "WebhookEvent",
    "webhookEvent",
    "Attempt",
    "attempt",
    "Data",
    "CreationTimeUtc",
    "creationTimeUtc",
];

/// String values that steer parsers down their branches.
pub(crate) const STRING_VALUES: &[&str] = &[
    "",
    " ",
    "\t",
    "ConnectionUpdated",
    "IssueCredentialRecordUpdated",
    "PresentationUpdated",
    "DIDStatusUpdated",
    "NewUserRegistered",
    "TenantDeleted",
    "active",
    "5a0c4c1e-8c2b-4f6e-9d3a-2b7e1f0a9c44",
    "2024-05-01T10:20:30.123456Z",
    "2024-05-01T10:20:30+02:00",
    "2024-02-30T10:20:30Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:60.999999999+23:59",
    "1677-09-21T00:12:43.145224191Z",
    "1677-09-21T00:12:43.145224192Z",
    "2262-04-11T23:47:16.854775807Z",
    "2262-04-11T23:47:16.854775808Z",
    "-2024-05-01T10:20:30Z",
];

/// JSON whose keys are mostly real field names of the formats, and whose strings are often
/// values the parsers look for.
pub(crate) fn loose_json() -> BoxedStrategy<Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number().prop_map(Json::Num),
        text().prop_map(Json::Str),
        (prop::sample::select(STRING_VALUES), styles())
            .prop_map(|(v, st)| Json::Str(Text::styled(v, &st))),
    ];
    let any_key = prop_oneof![3 => key(FIELD_NAMES), 1 => text()];
    leaf.prop_recursive(4, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Arr),
            prop::collection::vec((any_key.clone(), inner), 0..7).prop_map(Json::Obj),
        ]
    })
    .boxed()
}

/// A field with one of `names` as key, always present unless `loose`; when `loose`, it is
/// sometimes missing or holds a value of another type.
pub(crate) fn req(
    names: &'static [&'static str],
    value: BoxedStrategy<Json>,
    loose: bool,
) -> FieldStrategy {
    let kv = (key(names), value).prop_map(Some);
    if loose {
        prop_oneof![
            8 => kv,
            1 => (key(names), loose_json()).prop_map(Some),
            1 => Just(None),
        ]
        .boxed()
    } else {
        kv.boxed()
    }
}

/// An optional field.
pub(crate) fn opt(
    names: &'static [&'static str],
    value: BoxedStrategy<Json>,
    loose: bool,
) -> FieldStrategy {
    prop_oneof![2 => req(names, value, loose), 1 => Just(None)].boxed()
}

pub(crate) type FieldStrategy = BoxedStrategy<Option<Field>>;

/// The fields, plus a few unknown ones, in any order.
pub(crate) fn fields(fields: Vec<FieldStrategy>, loose: bool) -> BoxedStrategy<Vec<Field>> {
    let extra_key = if loose {
        prop_oneof![key(FIELD_NAMES), text()].boxed()
    } else {
        extra_key()
    };
    // Unknown fields hold small values: the big ones live in the free-form fields already.
    let extra_value = if loose { loose_json() } else { scalar() };
    (
        fields,
        prop::collection::vec((extra_key, extra_value), 0..3),
        any::<u64>(),
    )
        .prop_map(|(known, extra, seed)| {
            let mut all: Vec<Field> = known.into_iter().flatten().chain(extra).collect();
            shuffle(&mut all, seed);
            all
        })
        .boxed()
}

/// Fisher-Yates with a small PRNG (splitmix64) seeded by the case, so that key order varies
/// (cheaper to generate than `prop_shuffle` under `prop_flat_map`).
pub(crate) fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let j = usize::try_from(z % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

pub(crate) fn obj(f: Vec<FieldStrategy>, loose: bool) -> BoxedStrategy<Json> {
    fields(f, loose).prop_map(Json::Obj).boxed()
}

/// A document: an object whose sender id is filled in when it is written (fresh for every HTTP
/// case, so that no two cases dedupe against each other, even while shrinking).
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) fields: Vec<Field>,
    pub(crate) id_key: Text,
    pub(crate) id_at: Index,
    pub(crate) id_styles: Vec<Esc>,
    pub(crate) ws: Vec<&'static str>,
}

impl Doc {
    pub(crate) fn object(&self, id: &str) -> Json {
        let mut fields = self.fields.clone();
        let at = self.id_at.index(fields.len() + 1);
        fields.insert(
            at,
            (
                self.id_key.clone(),
                Json::Str(Text::styled(id, &self.id_styles)),
            ),
        );
        Json::Obj(fields)
    }

    pub(crate) fn render(&self, id: &str) -> String {
        self.object(id).document(&self.ws)
    }
}

pub(crate) fn doc(
    fields: BoxedStrategy<Vec<Field>>,
    id_keys: &'static [&'static str],
) -> BoxedStrategy<Doc> {
    (
        fields,
        key(id_keys),
        any::<Index>(),
        prop::collection::vec(esc(), 1..4),
        ws_pool(),
    )
        .prop_map(|(fields, id_key, id_at, id_styles, ws)| Doc {
            fields,
            id_key,
            id_at,
            id_styles,
            ws,
        })
        .boxed()
}

// --- Kratos ---------------------------------------------------------------------------------

/// A Kratos body `{"identity": {…}}` (go-jsonnet output, or anything else a template makes).
#[derive(Debug, Clone)]
pub(crate) struct KratosCase {
    pub(crate) identity: Doc,
    pub(crate) outer: Vec<Field>,
    pub(crate) identity_key: Text,
    pub(crate) identity_at: Index,
    /// Sent with an `Ory-Webhook-Trigger-ID` (Kratos v25.4+), or without (dedupe by body).
    pub(crate) trigger: bool,
}

impl KratosCase {
    pub(crate) fn render(&self, id: &str) -> String {
        let mut outer = self.outer.clone();
        let at = self.identity_at.index(outer.len() + 1);
        outer.insert(at, (self.identity_key.clone(), self.identity.object(id)));
        Json::Obj(outer).document(&self.identity.ws)
    }
}

pub(crate) fn kratos_identity(loose: bool) -> BoxedStrategy<Vec<Field>> {
    let l = loose;
    let address = obj(
        vec![
            req(&["value"], s(), l),
            opt(&["verified"], boolean(), l),
            opt(&["via"], s(), l),
            opt(&["status"], s(), l),
            opt(&["id"], s(), l),
            opt(&["verified_at"], s(), l),
        ],
        l,
    );
    let recovery = obj(
        vec![
            req(&["value"], s(), l),
            opt(&["via"], s(), l),
            opt(&["id"], s(), l),
            opt(&["created_at"], s(), l),
        ],
        l,
    );
    let credential = obj(
        vec![
            opt(&["type"], s(), l),
            opt(&["identifiers"], arr(s()), l),
            opt(&["config"], json(), l),
            opt(&["version"], int(), l),
            opt(&["created_at"], s(), l),
        ],
        l,
    );
    let credentials = prop::collection::vec((text(), credential), 0..3)
        .prop_map(Json::Obj)
        .boxed();
    let traits = prop::collection::vec((text(), json()), 0..6)
        .prop_map(Json::Obj)
        .boxed();
    fields(
        vec![
            opt(&["schema_id"], s_or_null(), l),
            opt(&["schema_url"], s(), l),
            opt(&["state"], s(), l),
            opt(&["state_changed_at"], s(), l),
            opt(&["traits"], traits, l),
            opt(&["metadata_public"], json(), l),
            opt(&["metadata_admin"], json(), l),
            opt(&["verifiable_addresses"], arr(address), l),
            opt(&["recovery_addresses"], arr(recovery), l),
            opt(&["credentials"], credentials, l),
            opt(&["created_at"], s(), l),
            opt(&["updated_at"], s(), l),
            opt(&["organization_id"], s_or_null(), l),
            opt(&["external_id"], s(), l),
            opt(&["region"], s(), l),
        ],
        l,
    )
}

pub(crate) fn kratos_case(loose: bool) -> BoxedStrategy<KratosCase> {
    let outer_key = if loose {
        prop_oneof![key(FIELD_NAMES), text()].boxed()
    } else {
        extra_key()
    };
    let outer_value = if loose { loose_json() } else { json() };
    (
        doc(kratos_identity(loose), &["id"]),
        prop::collection::vec((outer_key, outer_value), 0..2),
        key(&["identity"]),
        any::<Index>(),
        any::<bool>(),
    )
        .prop_map(
            |(identity, outer, identity_key, identity_at, trigger)| KratosCase {
                identity,
                outer,
                identity_key,
                identity_at,
                trigger,
            },
        )
        .boxed()
}

// --- Identus --------------------------------------------------------------------------------

/// An RFC 3339 timestamp within the range of `i64` nanoseconds.
pub(crate) fn timestamp() -> BoxedStrategy<Json> {
    (
        1700i32..2262,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        prop::option::of(digits(1..10)),
        prop_oneof![
            Just("Z".to_string()),
            (prop::bool::ANY, 0u8..24, 0u8..60)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
        styles(),
    )
        .prop_map(|(y, mo, d, h, mi, sec, frac, off, st)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let ts = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{off}");
            Json::Str(Text::styled(&ts, &st))
        })
        .boxed()
}

pub(crate) fn identus_data(kind: &'static str, loose: bool) -> BoxedStrategy<Json> {
    let l = loose;
    let invitation = || {
        obj(
            vec![
                opt(&["id"], s(), l),
                opt(&["type"], s(), l),
                opt(&["from"], s(), l),
                opt(&["invitationUrl"], s(), l),
            ],
            l,
        )
    };
    let failure = || {
        obj(
            vec![
                opt(&["status"], int(), l),
                opt(&["type"], s(), l),
                opt(&["title"], s(), l),
                opt(&["detail"], s(), l),
                opt(&["instance"], s(), l),
            ],
            l,
        )
    };
    let strings = |names: &'static [&'static str]| -> Vec<FieldStrategy> {
        names
            .iter()
            .map(|n| opt(std::slice::from_ref(n), s_or_null(), l))
            .collect()
    };
    let f = match kind {
        "ConnectionUpdated" => {
            let mut f = vec![
                req(&["connectionId"], nb(), l),
                req(&["state"], s(), l),
                opt(&["metaRetries"], int(), l),
                opt(&["invitation"], invitation(), l),
                opt(&["metaLastFailure"], failure(), l),
            ];
            f.extend(strings(&[
                "thid",
                "label",
                "goalCode",
                "goal",
                "myDid",
                "theirDid",
                "role",
                "createdAt",
                "updatedAt",
                "self",
                "kind",
            ]));
            f
        }
        "IssueCredentialRecordUpdated" => {
            let mut f = vec![
                req(&["recordId"], nb(), l),
                req(&["protocolState"], s(), l),
                opt(&["validityPeriod"], number().prop_map(Json::Num).boxed(), l),
                opt(&["claims"], json(), l),
                opt(&["automaticIssuance"], boolean(), l),
                opt(&["metaRetries"], int(), l),
                opt(&["invitation"], invitation(), l),
                opt(&["metaLastFailure"], failure(), l),
            ];
            f.extend(strings(&[
                "thid",
                "credentialFormat",
                "subjectId",
                "createdAt",
                "updatedAt",
                "role",
                "credential",
                "issuingDID",
                "goalCode",
                "goal",
                "myDid",
            ]));
            f
        }
        "PresentationUpdated" => {
            let proof = obj(
                vec![
                    opt(&["schemaId"], s(), l),
                    opt(&["trustIssuers"], arr(s()), l),
                ],
                l,
            );
            let mut f = vec![
                req(&["presentationId"], nb(), l),
                req(&["status"], s(), l),
                opt(&["proofs"], arr(proof), l),
                opt(&["data"], arr(s()), l),
                opt(&["requestData"], arr(s()), l),
                opt(&["disclosedClaims"], json(), l),
                opt(&["metaRetries"], int(), l),
                opt(&["invitation"], invitation(), l),
                opt(&["metaLastFailure"], failure(), l),
            ];
            f.extend(strings(&[
                "thid",
                "role",
                "connectionId",
                "goalCode",
                "goal",
                "myDid",
            ]));
            f
        }
        "DIDStatusUpdated" => vec![
            req(&["did"], nb(), l),
            req(&["status"], s(), l),
            opt(&["longFormDid"], s(), l),
        ],
        // An event type this version does not know: any data.
        _ => return if l { loose_json() } else { json() },
    };
    obj(f, l)
}

pub(crate) const IDENTUS_TYPES: &[&str] = &[
    "ConnectionUpdated",
    "IssueCredentialRecordUpdated",
    "PresentationUpdated",
    "DIDStatusUpdated",
    "",
];

pub(crate) fn identus_doc(loose: bool) -> BoxedStrategy<Doc> {
    let of_kind = |kind: &'static str| {
        let type_value = if kind.is_empty() {
            // Unknown types are stored, not refused.
            nb_text().prop_map(|t| Json::Str(t.prefixed("x."))).boxed()
        } else {
            styled(kind.to_string()).prop_map(Json::Str).boxed()
        };
        doc(
            fields(
                vec![
                    req(&["type"], type_value, loose),
                    req(&["ts"], timestamp(), loose),
                    req(&["data"], identus_data(kind, loose), loose),
                    req(&["walletId"], nb(), loose),
                ],
                loose,
            ),
            &["id"],
        )
    };
    prop::strategy::Union::new(IDENTUS_TYPES.iter().map(|k| of_kind(k))).boxed()
}

// --- ABP ------------------------------------------------------------------------------------

pub(crate) fn abp_doc(loose: bool) -> BoxedStrategy<Doc> {
    let l = loose;
    doc(
        fields(
            vec![
                req(&["WebhookEvent", "webhookEvent"], nb(), l),
                opt(&["Attempt", "attempt"], int_or_null(), l),
                opt(&["Data", "data"], json(), l),
                opt(&["CreationTimeUtc", "creationTimeUtc"], s_or_null(), l),
            ],
            l,
        ),
        &["Id", "id"],
    )
}

/// An ABP body with `sendExactSameData: true`: any JSON (here an object, with a nonce so that
/// two cases never share a body).
pub(crate) fn abp_bare_doc() -> BoxedStrategy<Doc> {
    doc(
        prop::collection::vec((text(), json()), 0..5).boxed(),
        &["x-nonce"],
    )
}
