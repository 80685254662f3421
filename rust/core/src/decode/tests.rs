//! Unit tests of the decoder through its public API.

use super::*;

fn tag(name: &str, address: i64, dtype: &str) -> TagSpec {
    TagSpec::new(name, address, dtype, TagParams::default()).expect("valid tag")
}

fn tag_with(name: &str, address: i64, dtype: &str, params: TagParams<'_>) -> TagSpec {
    TagSpec::new(name, address, dtype, params).expect("valid tag")
}

fn ordered(order: &str) -> TagParams<'_> {
    TagParams {
        order: Some(order),
        ..TagParams::default()
    }
}

#[test]
fn float32_one_in_all_four_orders() {
    // 1.0f32 is 0x3F80_0000: bytes A=3F B=80 C=00 D=00.
    let cases = [
        ("ABCD", [0x3F80, 0x0000]),
        ("CDAB", [0x0000, 0x3F80]),
        ("BADC", [0x803F, 0x0000]),
        ("DCBA", [0x0000, 0x803F]),
    ];
    for (order, regs) in cases {
        let plan = Plan::new(vec![tag_with("x", 0, "float32", ordered(order))]).unwrap();
        assert_eq!(
            plan.decode(&regs, None).unwrap(),
            vec![Value::Float(1.0)],
            "{order}"
        );
    }
}

#[test]
fn sixty_four_bit_orders_are_the_same_two_switches() {
    // 0x0102030405060708 as uint64.
    let v = 0x0102_0304_0506_0708u64;
    let cases = [
        ("ABCD", [0x0102, 0x0304, 0x0506, 0x0708]),
        ("CDAB", [0x0708, 0x0506, 0x0304, 0x0102]),
        ("BADC", [0x0201, 0x0403, 0x0605, 0x0807]),
        ("DCBA", [0x0807, 0x0605, 0x0403, 0x0201]),
    ];
    for (order, regs) in cases {
        let plan = Plan::new(vec![tag_with("x", 0, "uint64", ordered(order))]).unwrap();
        assert_eq!(
            plan.decode(&regs, None).unwrap(),
            vec![Value::UInt(v)],
            "{order}"
        );
    }
}

#[test]
fn bits_bytes_and_small_integers() {
    let tags = vec![
        tag_with(
            "b0",
            10,
            "bit",
            TagParams {
                bit: Some(0),
                ..Default::default()
            },
        ),
        tag_with(
            "b15",
            10,
            "bit",
            TagParams {
                bit: Some(15),
                ..Default::default()
            },
        ),
        tag("hi", 10, "int8"),
        tag_with(
            "lo",
            10,
            "uint8",
            TagParams {
                byte: Some("low"),
                ..Default::default()
            },
        ),
        tag("s16", 11, "int16"),
        tag("u16", 11, "uint16"),
        tag_with("sw", 11, "uint16", ordered("BADC")),
    ];
    let plan = Plan::new(tags).unwrap();
    assert_eq!((plan.start(), plan.count()), (10, 2));
    let got = plan.decode(&[0x80FF, 0xFFFE], None).unwrap();
    assert_eq!(
        got,
        vec![
            Value::Bool(true),
            Value::Bool(true),
            Value::Int(-128),
            Value::Int(255),
            Value::Int(-2),
            Value::Int(0xFFFE),
            Value::Int(0xFEFF),
        ]
    );
}

#[test]
fn scaling_turns_integers_into_floats_only_when_it_changes_them() {
    let scaled = TagParams {
        scale: Some(0.1),
        offset: Some(-40.0),
        ..Default::default()
    };
    let plan = Plan::new(vec![
        tag("raw", 0, "int16"),
        tag_with("temp", 0, "int16", scaled),
    ])
    .unwrap();
    let got = plan.decode(&[655], None).unwrap();
    assert_eq!(got[0], Value::Int(655));
    match got[1] {
        Value::Float(x) => assert!((x - 25.5).abs() < 1e-12),
        ref other => panic!("expected a float, got {other:?}"),
    }
}

#[test]
fn strings_trim_and_swap() {
    // "PUMP-7" + NUL + space padding over 4 registers.
    let regs = [0x5055, 0x4D50, 0x2D37, 0x0020];
    let plan = Plan::new(vec![tag_with(
        "s",
        0,
        "string",
        TagParams {
            length: Some(4),
            ..Default::default()
        },
    )])
    .unwrap();
    assert_eq!(
        plan.decode(&regs, None).unwrap(),
        vec![Value::Str("PUMP-7".into())]
    );
    let swapped: Vec<u16> = regs.iter().map(|r| r.swap_bytes()).collect();
    let params = TagParams {
        length: Some(4),
        order: Some("BADC"),
        ..Default::default()
    };
    let plan = Plan::new(vec![tag_with("s", 0, "string", params)]).unwrap();
    assert_eq!(
        plan.decode(&swapped, None).unwrap(),
        vec![Value::Str("PUMP-7".into())]
    );
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let plan = Plan::new(vec![tag_with(
        "s",
        0,
        "string",
        TagParams {
            length: Some(1),
            ..Default::default()
        },
    )])
    .unwrap();
    assert_eq!(
        plan.decode(&[0xFF41], None).unwrap(),
        vec![Value::Str("\u{FFFD}A".into())]
    );
}

#[test]
fn bcd_decodes_and_names_the_tag_on_bad_nibbles() {
    let plan = Plan::new(vec![
        tag("meter", 0, "bcd16"),
        tag_with("total", 1, "bcd32", ordered("CDAB")),
    ])
    .unwrap();
    assert_eq!(
        plan.decode(&[0x1234, 0x5678, 0x0012], None).unwrap(),
        vec![Value::Int(1234), Value::Int(125678)]
    );
    let err = plan.decode(&[0x12A4, 0, 0], None).unwrap_err();
    assert!(matches!(&err, DecodeError::InvalidBcd { tag, raw: 0x12A4, .. } if tag == "meter"));
    assert!(err.to_string().contains("\"meter\""));
}

#[test]
fn too_short_names_the_first_tag_that_does_not_fit() {
    let plan = Plan::new(vec![
        tag("late", 8, "float64"),
        tag("early", 0, "int16"),
        tag("mid", 4, "int32"),
    ])
    .unwrap();
    assert_eq!((plan.start(), plan.count()), (0, 12));
    let err = plan.decode(&[0; 5], None).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TooShort {
            tag: "mid".into(),
            dtype: "int32",
            address: 4,
            base: 0,
            need: 6,
            got: 5
        }
    );
    // With an earlier base the block must reach further.
    let err = plan.decode(&[0; 12], Some(-2)).unwrap_err();
    assert!(matches!(err, DecodeError::TooShort { need: 14, .. }));
    let err = plan.decode(&[0; 12], Some(1)).unwrap_err();
    assert!(matches!(err, DecodeError::BeforeBase { ref tag, .. } if tag == "early"));
}

#[test]
fn base_shifts_the_block() {
    let plan = Plan::new(vec![tag("x", 100, "uint16")]).unwrap();
    assert_eq!(
        plan.decode(&[1, 2, 3], Some(98)).unwrap(),
        vec![Value::Int(3)]
    );
    assert_eq!(plan.decode(&[7], None).unwrap(), vec![Value::Int(7)]);
}

#[test]
fn nan_and_infinity_decode_as_such() {
    let plan = Plan::new(vec![tag("a", 0, "float32"), tag("b", 2, "float16")]).unwrap();
    let got = plan.decode(&[0x7FC0, 0x0000, 0xFC00], None).unwrap();
    assert!(matches!(got[0], Value::Float(x) if x.is_nan()));
    assert_eq!(got[1], Value::Float(f64::NEG_INFINITY));
}

#[test]
fn tag_validation_names_the_tag() {
    let bad = [
        TagSpec::new("t", 0, "float128", TagParams::default()),
        TagSpec::new("t", 0, "int32", ordered("ABDC")),
        TagSpec::new("t", 0, "bit", TagParams::default()),
        TagSpec::new(
            "t",
            0,
            "bit",
            TagParams {
                bit: Some(16),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "int16",
            TagParams {
                bit: Some(1),
                ..Default::default()
            },
        ),
        TagSpec::new("t", 0, "string", TagParams::default()),
        TagSpec::new(
            "t",
            0,
            "string",
            TagParams {
                length: Some(0),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "int8",
            TagParams {
                byte: Some("middle"),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "int16",
            TagParams {
                byte: Some("low"),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "int16",
            TagParams {
                scale: Some(0.0),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "int16",
            TagParams {
                offset: Some(f64::NAN),
                ..Default::default()
            },
        ),
        TagSpec::new(
            "t",
            0,
            "bit",
            TagParams {
                bit: Some(1),
                scale: Some(2.0),
                ..Default::default()
            },
        ),
        TagSpec::new("t", -1, "int16", TagParams::default()),
        TagSpec::new("t", 65535, "float32", TagParams::default()),
    ];
    for result in bad {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("\"t\""), "{err}");
    }
    assert!(TagSpec::new("t", 65534, "int32", TagParams::default()).is_ok());
    let dup = Plan::new(vec![tag("t", 0, "int16"), tag("t", 1, "int16")]).unwrap_err();
    assert_eq!(
        dup,
        TagError::Duplicate {
            tag: "t".into(),
            first: 0,
            second: 1
        }
    );
}

fn encode_values(plan: &Plan, values: &[EncodeValue]) -> Vec<u16> {
    let values: Vec<_> = values.iter().cloned().map(Some).collect();
    plan.encode(&values).expect("encodable")
}

#[test]
fn encode_inverts_decode_for_every_dtype_and_order() {
    use EncodeValue as E;
    for order in ["ABCD", "CDAB", "BADC", "DCBA"] {
        let p = |extra: TagParams<'static>| TagParams {
            order: Some(order),
            ..extra
        };
        let tags = vec![
            tag_with(
                "bit3",
                0,
                "bit",
                p(TagParams {
                    bit: Some(3),
                    ..Default::default()
                }),
            ),
            tag_with("hi", 0, "int8", p(TagParams::default())),
            tag_with(
                "lo",
                0,
                "uint8",
                p(TagParams {
                    byte: Some("low"),
                    ..Default::default()
                }),
            ),
            tag_with("i16", 1, "int16", p(TagParams::default())),
            tag_with("u16", 2, "uint16", p(TagParams::default())),
            tag_with("i32", 3, "int32", p(TagParams::default())),
            tag_with("u32", 5, "uint32", p(TagParams::default())),
            tag_with("i64", 7, "int64", p(TagParams::default())),
            tag_with("u64", 11, "uint64", p(TagParams::default())),
            tag_with("f16", 15, "float16", p(TagParams::default())),
            tag_with("f32", 16, "float32", p(TagParams::default())),
            tag_with("f64", 18, "float64", p(TagParams::default())),
            tag_with(
                "s",
                22,
                "string",
                p(TagParams {
                    length: Some(3),
                    ..Default::default()
                }),
            ),
            tag_with("b16", 25, "bcd16", p(TagParams::default())),
            tag_with("b32", 26, "bcd32", p(TagParams::default())),
        ];
        let plan = Plan::new(tags).unwrap();
        let values = [
            E::Bool(true),
            E::Int(-5),
            E::Int(200),
            E::Int(-30000),
            E::Int(65535),
            E::Int(-2_000_000_000),
            E::Int(4_000_000_000),
            E::Int(i64::MIN.into()),
            E::Int(u64::MAX.into()),
            E::Float(-1.5),
            E::Float(3.25),
            E::Float(std::f64::consts::PI),
            E::Str("µ-5".into()),
            E::Int(9876),
            E::Int(12_345_678),
        ];
        let regs = encode_values(&plan, &values);
        let got = plan.decode(&regs, None).unwrap();
        let expected = vec![
            Value::Bool(true),
            Value::Int(-5),
            Value::Int(200),
            Value::Int(-30000),
            Value::Int(65535),
            Value::Int(-2_000_000_000),
            Value::Int(4_000_000_000),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float(-1.5),
            Value::Float(3.25),
            Value::Float(std::f64::consts::PI),
            Value::Str("µ-5".into()),
            Value::Int(9876),
            Value::Int(12_345_678),
        ];
        assert_eq!(got, expected, "order {order}");
    }
}

#[test]
fn encode_errors_name_the_tag() {
    let plan = Plan::new(vec![
        tag("small", 0, "int16"),
        tag_with(
            "s",
            1,
            "string",
            TagParams {
                length: Some(1),
                ..Default::default()
            },
        ),
    ])
    .unwrap();
    let err = plan
        .encode(&[
            Some(EncodeValue::Int(40_000)),
            Some(EncodeValue::Str("ab".into())),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, EncodeError::Unrepresentable { tag, .. } if tag == "small"),
        "{err}"
    );
    let err = plan
        .encode(&[
            Some(EncodeValue::Int(1)),
            Some(EncodeValue::Str("abc".into())),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, EncodeError::Unrepresentable { tag, .. } if tag == "s"),
        "{err}"
    );
    let err = plan.encode(&[Some(EncodeValue::Int(1)), None]).unwrap_err();
    assert_eq!(err, EncodeError::Missing { tag: "s".into() });
}

#[test]
fn scaled_encode_rounds_to_the_nearest_raw_value() {
    let params = TagParams {
        scale: Some(0.1),
        offset: Some(-40.0),
        ..Default::default()
    };
    let plan = Plan::new(vec![tag_with("temp", 0, "uint16", params)]).unwrap();
    assert_eq!(encode_values(&plan, &[EncodeValue::Float(25.5)]), vec![655]);
    let err = plan.encode(&[Some(EncodeValue::Float(-41.0))]).unwrap_err();
    assert!(err.to_string().contains("temp"));
}

#[test]
fn decode_many_gives_one_column_per_tag() {
    let plan = Plan::new(vec![
        tag("a", 0, "int16"),
        tag_with(
            "b",
            1,
            "uint32",
            TagParams {
                scale: Some(2.0),
                ..Default::default()
            },
        ),
        tag_with(
            "s",
            3,
            "string",
            TagParams {
                length: Some(1),
                ..Default::default()
            },
        ),
        tag_with(
            "on",
            0,
            "bit",
            TagParams {
                bit: Some(15),
                ..Default::default()
            },
        ),
    ])
    .unwrap();
    let frames = [0xFFFF, 0, 1, 0x4142, 5, 0, 2, 0x4300];
    let cols = plan.decode_many(&frames, 4, None).unwrap();
    assert_eq!(
        cols,
        vec![
            Column::I16(vec![-1, 5]),
            Column::F64(vec![2.0, 4.0]),
            Column::Str(vec!["AB".into(), "C".into()]),
            Column::Bool(vec![true, false]),
        ]
    );
    let err = plan.decode_many(&frames[..6], 3, None).unwrap_err();
    assert!(matches!(err, DecodeError::TooShort { ref tag, need: 4, got: 3, .. } if tag == "s"));
    let bcd = Plan::new(vec![tag("m", 0, "bcd16")]).unwrap();
    let err = bcd.decode_many(&[0x0001, 0x000F], 1, None).unwrap_err();
    assert!(err.to_string().contains("frame 1"), "{err}");
}

#[test]
fn decode_array_from_values_and_wire_bytes_agree() {
    let regs = [0x0001u16, 0xFFFF, 0x8000, 0x7FFF];
    let wire: Vec<u8> = regs.iter().flat_map(|r| r.to_be_bytes()).collect();
    for block in [RegisterBlock::Values(&regs), RegisterBlock::Wire(&wire)] {
        assert_eq!(
            decode_array(block, Dtype::Int16, Order::ABCD, 1.0, 0.0).unwrap(),
            Column::I16(vec![1, -1, -32768, 32767])
        );
        assert_eq!(
            decode_array(block, Dtype::Int16, Order::ABCD, 0.5, 1.0).unwrap(),
            Column::F64(vec![1.5, 0.5, -16383.0, 16384.5])
        );
        assert_eq!(
            decode_array(block, Dtype::Uint32, Order::CDAB, 1.0, 0.0).unwrap(),
            Column::U32(vec![0xFFFF_0001, 0x7FFF_8000])
        );
        assert_eq!(
            decode_array(block, Dtype::Int8, Order::ABCD, 1.0, 0.0).unwrap(),
            Column::I8(vec![0, 1, -1, -1, -128, 0, 127, -1])
        );
    }
    assert!(matches!(
        decode_array(
            RegisterBlock::Values(&regs[..3]),
            Dtype::Float32,
            Order::ABCD,
            1.0,
            0.0
        ),
        Err(ArrayError::Ragged {
            got: 3,
            width: 2,
            ..
        })
    ));
    assert!(matches!(
        decode_array(
            RegisterBlock::Wire(&wire[..3]),
            Dtype::Int16,
            Order::ABCD,
            1.0,
            0.0
        ),
        Err(ArrayError::OddBytes { got: 3 })
    ));
    assert!(decode_array(
        RegisterBlock::Values(&regs),
        Dtype::String,
        Order::ABCD,
        1.0,
        0.0
    )
    .is_err());
}

#[test]
fn encode_array_inverts_decode_array() {
    for order in Order::ALL {
        let ints = [-3i64, 0, 70_000, i32::MIN as i64];
        let regs = encode_array(Numbers::I64(&ints), Dtype::Int32, order).unwrap();
        assert_eq!(
            decode_array(RegisterBlock::Values(&regs), Dtype::Int32, order, 1.0, 0.0).unwrap(),
            Column::I32(vec![-3, 0, 70_000, i32::MIN])
        );
        let floats = [1.5, f64::NAN, f64::INFINITY, -0.0];
        let regs = encode_array(Numbers::F64(&floats), Dtype::Float64, order).unwrap();
        let Column::F64(back) = decode_array(
            RegisterBlock::Values(&regs),
            Dtype::Float64,
            order,
            1.0,
            0.0,
        )
        .unwrap() else {
            panic!("float64 decodes to F64")
        };
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            floats.map(f64::to_bits).to_vec()
        );
    }
    assert!(matches!(
        encode_array(Numbers::F64(&[1.5]), Dtype::Int16, Order::ABCD),
        Err(ArrayError::Unrepresentable { index: 0, .. })
    ));
    assert!(matches!(
        encode_array(Numbers::F64(&[1e39]), Dtype::Float32, Order::ABCD),
        Err(ArrayError::Unrepresentable { index: 0, .. })
    ));
    assert!(matches!(
        encode_array(Numbers::I64(&[1, 2, 3]), Dtype::Uint8, Order::ABCD),
        Err(ArrayError::OddCount { got: 3 })
    ));
}

/// A small deterministic generator, so the randomized test needs no crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn random_plans_and_registers_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let orders = ["ABCD", "CDAB", "BADC", "DCBA", "XYZW"];
    let bytes = [None, Some("high"), Some("low"), Some("mid")];
    let mut decoded = 0;
    for round in 0..3000 {
        let mut tags = Vec::new();
        for i in 0..rng.below(6) {
            let dtype = Dtype::ALL[rng.below(15) as usize].name();
            let params = TagParams {
                order: Some(orders[rng.below(5) as usize]),
                scale: Some([1.0, 0.5, -3.0, 0.0][rng.below(4) as usize]),
                offset: Some([0.0, 1.5][rng.below(2) as usize]),
                bit: (rng.below(2) == 0).then(|| rng.below(20) as i64 - 2),
                length: (rng.below(2) == 0).then(|| rng.below(10) as i64 - 1),
                byte: bytes[rng.below(4) as usize],
                unit: None,
            };
            let address = rng.below(70_000) as i64 % [40, 70_000][rng.below(2) as usize];
            if let Ok(t) = TagSpec::new(&format!("t{i}"), address, dtype, params) {
                tags.push(t);
            }
        }
        let Ok(plan) = Plan::new(tags) else { continue };
        let regs: Vec<u16> = (0..rng.below(60)).map(|_| rng.next() as u16).collect();
        let base = (rng.below(3) == 0).then(|| rng.below(80) as i64 - 10);
        if plan.decode(&regs, base).is_ok() {
            decoded += 1;
        }
        let columns = 1 + rng.below(50) as usize;
        let frames: Vec<u16> = (0..columns * 3).map(|_| rng.next() as u16).collect();
        if let Ok(cols) = plan.decode_many(&frames, columns, base) {
            assert!(cols.iter().all(|c| c.len() == 3), "round {round}");
        }
        let values: Vec<Option<EncodeValue>> = plan
            .tags()
            .iter()
            .map(|_| match rng.below(5) {
                0 => Some(EncodeValue::Int(rng.next() as i64 as i128)),
                1 => Some(EncodeValue::Float(f64::from_bits(rng.next()))),
                2 => Some(EncodeValue::Bool(rng.below(2) == 1)),
                3 => Some(EncodeValue::Str("ab".into())),
                _ => None,
            })
            .collect();
        if let Ok(encoded) = plan.encode(&values) {
            assert_eq!(encoded.len(), plan.count());
        }
        let dtype = Dtype::ALL[rng.below(15) as usize];
        let wire: Vec<u8> = regs
            .iter()
            .flat_map(|r| r.to_be_bytes())
            .take(rng.below(200) as usize)
            .collect();
        let _ = decode_array(
            RegisterBlock::Values(&regs),
            dtype,
            Order::ALL[rng.below(4) as usize],
            1.0,
            0.0,
        );
        let _ = decode_array(RegisterBlock::Wire(&wire), dtype, Order::DCBA, 0.5, 1.0);
        let floats: Vec<f64> = regs.iter().map(|&r| f64::from(r) - 30_000.0).collect();
        let _ = encode_array(Numbers::F64(&floats), dtype, Order::CDAB);
    }
    assert!(
        decoded > 100,
        "the generator should produce decodable cases too ({decoded})"
    );
}

#[test]
fn decode_many_in_blocks_matches_row_by_row() {
    // Enough rows to span several cache blocks, and a bad BCD in a late row.
    let plan = Plan::new(vec![
        tag("a", 0, "int16"),
        tag_with(
            "s",
            1,
            "string",
            TagParams {
                length: Some(1),
                ..Default::default()
            },
        ),
        tag("m", 2, "bcd16"),
    ])
    .unwrap();
    let rows = 30_000;
    let mut frames = Vec::with_capacity(rows * 3);
    for r in 0..rows {
        frames.extend([r as u16, 0x4142, 0x0042]);
    }
    let cols = plan.decode_many(&frames, 3, None).unwrap();
    let Column::I16(a) = &cols[0] else {
        panic!("int16 column")
    };
    assert_eq!(a.len(), rows);
    assert!(a.iter().enumerate().all(|(r, &v)| v == r as u16 as i16));
    assert_eq!(cols[1], Column::Str(vec!["AB".to_owned(); rows]));
    assert_eq!(cols[2], Column::U16(vec![42; rows]));
    frames[3 * 25_000 + 2] = 0x00A0;
    let err = plan.decode_many(&frames, 3, None).unwrap_err();
    assert!(err.to_string().contains("frame 25000"), "{err}");
    assert_eq!(
        plan.decode_many(&[], 3, None).unwrap()[1],
        Column::Str(vec![])
    );
}
