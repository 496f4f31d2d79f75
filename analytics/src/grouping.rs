//! Packed group keys: a KPI's breakdown grouped on one 64-bit integer.
//!
//! DataFusion groups text, or several columns, by hashing and comparing every row's values;
//! one integer column it groups several times faster. A breakdown has few distinct values per
//! dimension (services, channels, years, months), so each value is numbered as it is first
//! met, the numbers of a row are packed into one integer, the aggregation groups by it, and
//! the dimensions are read back from the numbers afterwards:
//!
//! ```sql
//! SELECT unpack_0(key) AS service, unpack_1(key) AS year, num, den
//! FROM (SELECT pack(service, year) AS key, sum(…) AS num, count(*) AS den
//!       FROM requests WHERE … GROUP BY pack(service, year))
//! ```
//!
//! The numbering belongs to one query ([`KeyPacking`]) and is shared by the partitions that
//! run it. Reading a row's number costs little: a warehouse sorted by service, then time,
//! repeats the previous row's value, and text is first looked up by its 16-byte view.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait, UInt64Array};
use datafusion::arrow::datatypes::{
    ArrowNativeType, ArrowPrimitiveType, DataType, Date32Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use rustc_hash::FxHashMap;

use crate::columnar::{answer, one_argument};

/// The most dimensions packed into one key (16 bits each at most).
pub(crate) const MAX_DIMENSIONS: usize = 4;

/// The numbering of one dimension's values: number 0 is null, `n` is `values[n - 1]`.
#[derive(Default)]
struct Numbering {
    text: FxHashMap<Box<str>, u64>,
    /// Texts of up to 12 bytes by their whole view (which holds them).
    short: FxHashMap<u128, u64>,
    integers: FxHashMap<i64, u64>,
    values: Vec<ScalarValue>,
}

impl Numbering {
    fn add(&mut self, value: ScalarValue) -> u64 {
        self.values.push(value);
        self.values.len() as u64
    }

    fn text_number(&mut self, text: &str, value: impl FnOnce() -> ScalarValue) -> u64 {
        if let Some(&n) = self.text.get(text) {
            return n;
        }
        let n = self.add(value());
        self.text.insert(text.into(), n);
        n
    }
}

/// The numberings of one query's dimensions, shared by the functions that pack and unpack.
struct Numberings {
    types: Vec<DataType>,
    bits: u32,
    dimensions: Mutex<Vec<Numbering>>,
}

/// The key packing of one query's breakdown.
#[derive(Clone)]
pub(crate) struct KeyPacking {
    shared: Arc<Numberings>,
}

impl KeyPacking {
    /// A packing for dimensions of these types, or `None` when the breakdown is empty, too
    /// long, or has a type other than text, integers, dates and timestamps.
    pub(crate) fn new(types: Vec<DataType>) -> Option<Self> {
        if types.is_empty() || types.len() > MAX_DIMENSIONS || !types.iter().all(packable) {
            return None;
        }
        let bits = 64 / types.len() as u32;
        Some(KeyPacking {
            shared: Arc::new(Numberings {
                bits,
                dimensions: Mutex::new(types.iter().map(|_| Numbering::default()).collect()),
                types,
            }),
        })
    }

    /// The key of the dimensions' values, one expression per dimension in order.
    pub(crate) fn pack(&self, dimensions: Vec<Expr>) -> Expr {
        ScalarUDF::new_from_impl(Pack {
            packing: self.clone(),
            signature: Signature::any(self.shared.types.len(), Volatility::Immutable),
        })
        .call(dimensions)
    }

    /// The value of dimension `index` of a key.
    pub(crate) fn unpack(&self, index: usize, key: Expr) -> Expr {
        ScalarUDF::new_from_impl(Unpack {
            packing: self.clone(),
            index,
            signature: Signature::exact(vec![DataType::UInt64], Volatility::Immutable),
        })
        .call(vec![key])
    }
}

impl std::fmt::Debug for KeyPacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPacking")
            .field("types", &self.shared.types)
            .finish()
    }
}

impl PartialEq for KeyPacking {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for KeyPacking {}

impl std::hash::Hash for KeyPacking {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.shared), state);
    }
}

fn packable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Date32
            | DataType::Timestamp(_, _)
    )
}

/// Numbers the rows of a text column of string views. Equal views are equal texts; a view
/// of up to 12 bytes holds its text, so those are numbered by view; a longer text is
/// compared with the previous row's before it is looked up.
fn number_views(array: &ArrayRef, numbering: &mut Numbering, out: &mut [u64], shift: u32) {
    const INLINE: u32 = 12;
    let texts = array.as_string_view();
    let views = texts.views();
    let nulls = texts.nulls();
    let mut previous: Option<(u128, &str, u64)> = None;
    for (row, key) in out.iter_mut().enumerate() {
        if nulls.is_some_and(|n| n.is_null(row)) {
            continue;
        }
        let view = views[row];
        let n = match previous {
            Some((v, _, n)) if v == view => n,
            _ if (view as u32) <= INLINE => {
                let n = match numbering.short.get(&view) {
                    Some(&n) => n,
                    None => {
                        let text = texts.value(row);
                        let n = numbering
                            .text_number(text, || ScalarValue::Utf8View(Some(text.to_string())));
                        numbering.short.insert(view, n);
                        n
                    }
                };
                previous = Some((view, "", n));
                n
            }
            _ => {
                let text = texts.value(row);
                let n = match previous {
                    Some((v, p, n)) if v as u64 == view as u64 && p == text => n,
                    _ => numbering
                        .text_number(text, || ScalarValue::Utf8View(Some(text.to_string()))),
                };
                previous = Some((view, text, n));
                n
            }
        };
        *key |= n << shift;
    }
}

/// Numbers the rows of a text column with offsets.
fn number_texts<O: OffsetSizeTrait>(
    array: &ArrayRef,
    numbering: &mut Numbering,
    out: &mut [u64],
    shift: u32,
) {
    let texts = array.as_string::<O>();
    let mut previous: Option<(&str, u64)> = None;
    for (row, key) in out.iter_mut().enumerate() {
        if texts.is_null(row) {
            continue;
        }
        let text = texts.value(row);
        let n = match previous {
            Some((p, n)) if p == text => n,
            _ => {
                let n = numbering.text_number(text, || {
                    if O::IS_LARGE {
                        ScalarValue::LargeUtf8(Some(text.to_string()))
                    } else {
                        ScalarValue::Utf8(Some(text.to_string()))
                    }
                });
                previous = Some((text, n));
                n
            }
        };
        *key |= n << shift;
    }
}

/// Numbers the rows of an integer, date or timestamp column.
fn number_integers<T: ArrowPrimitiveType>(
    array: &ArrayRef,
    numbering: &mut Numbering,
    out: &mut [u64],
    shift: u32,
) -> datafusion::common::Result<()> {
    let integers = array.as_primitive::<T>();
    let nulls = integers.nulls();
    let mut previous: Option<(T::Native, u64)> = None;
    for (row, (key, &value)) in out.iter_mut().zip(integers.values().iter()).enumerate() {
        if nulls.is_some_and(|n| n.is_null(row)) {
            continue;
        }
        let n = match previous {
            Some((p, n)) if p == value => n,
            _ => {
                let wide = value.to_i64().unwrap_or_default();
                let n = match numbering.integers.get(&wide) {
                    Some(&n) => n,
                    None => {
                        let n = numbering.add(ScalarValue::try_from_array(array, row)?);
                        numbering.integers.insert(wide, n);
                        n
                    }
                };
                previous = Some((value, n));
                n
            }
        };
        *key |= n << shift;
    }
    Ok(())
}

/// `pack(d0, d1, …)`: the key of a row's dimension values.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Pack {
    packing: KeyPacking,
    signature: Signature,
}

impl ScalarUDFImpl for Pack {
    fn name(&self) -> &str {
        "pack"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let shared = &self.packing.shared;
        let rows = arrays.first().map_or(0, |a| a.len());
        let mut keys = vec![0u64; rows];
        let mut dimensions = shared
            .dimensions
            .lock()
            .map_err(|_| DataFusionError::Execution("a grouping failed earlier".into()))?;
        for (i, (array, numbering)) in arrays.iter().zip(dimensions.iter_mut()).enumerate() {
            if array.data_type() != &shared.types[i] {
                return Err(DataFusionError::Execution(format!(
                    "pack: dimension {i} is {}, planned as {}",
                    array.data_type(),
                    shared.types[i]
                )));
            }
            let shift = shared.bits * i as u32;
            match array.data_type() {
                DataType::Utf8View => number_views(array, numbering, &mut keys, shift),
                DataType::Utf8 => number_texts::<i32>(array, numbering, &mut keys, shift),
                DataType::LargeUtf8 => number_texts::<i64>(array, numbering, &mut keys, shift),
                DataType::Int8 => number_integers::<Int8Type>(array, numbering, &mut keys, shift)?,
                DataType::Int16 => {
                    number_integers::<Int16Type>(array, numbering, &mut keys, shift)?
                }
                DataType::Int32 => {
                    number_integers::<Int32Type>(array, numbering, &mut keys, shift)?
                }
                DataType::Int64 => {
                    number_integers::<Int64Type>(array, numbering, &mut keys, shift)?
                }
                DataType::UInt8 => {
                    number_integers::<UInt8Type>(array, numbering, &mut keys, shift)?
                }
                DataType::UInt16 => {
                    number_integers::<UInt16Type>(array, numbering, &mut keys, shift)?
                }
                DataType::UInt32 => {
                    number_integers::<UInt32Type>(array, numbering, &mut keys, shift)?
                }
                DataType::Date32 => {
                    number_integers::<Date32Type>(array, numbering, &mut keys, shift)?
                }
                DataType::Timestamp(TimeUnit::Second, _) => {
                    number_integers::<TimestampSecondType>(array, numbering, &mut keys, shift)?
                }
                DataType::Timestamp(TimeUnit::Millisecond, _) => {
                    number_integers::<TimestampMillisecondType>(array, numbering, &mut keys, shift)?
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    number_integers::<TimestampMicrosecondType>(array, numbering, &mut keys, shift)?
                }
                DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                    number_integers::<TimestampNanosecondType>(array, numbering, &mut keys, shift)?
                }
                other => {
                    return Err(DataFusionError::Execution(format!(
                        "pack: no numbering for {other}"
                    )));
                }
            }
            if shared.bits < 64 && numbering.values.len() as u64 >= 1u64 << shared.bits {
                return Err(DataFusionError::Execution(format!(
                    "a breakdown by {} dimensions takes at most {} distinct values of each",
                    shared.types.len(),
                    (1u64 << shared.bits) - 1
                )));
            }
        }
        answer(Arc::new(UInt64Array::from(keys)), scalar)
    }
}

/// `unpack_<index>(key)`: the value of one dimension of a key.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Unpack {
    packing: KeyPacking,
    index: usize,
    signature: Signature,
}

impl ScalarUDFImpl for Unpack {
    fn name(&self) -> &str {
        "unpack"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(self.packing.shared.types[self.index].clone())
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let (keys, scalar) = one_argument(&args, "unpack")?;
        let keys = keys
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| DataFusionError::Execution("unpack takes a 64-bit key".into()))?;
        let shared = &self.packing.shared;
        let data_type = &shared.types[self.index];
        let null = ScalarValue::try_from(data_type)?;
        let shift = shared.bits * self.index as u32;
        let mask = if shared.bits == 64 {
            u64::MAX
        } else {
            (1u64 << shared.bits) - 1
        };
        let dimensions = shared
            .dimensions
            .lock()
            .map_err(|_| DataFusionError::Execution("a grouping failed earlier".into()))?;
        let numbering = &dimensions[self.index];
        let values = keys
            .iter()
            .map(|key| match key.map(|k| (k >> shift) & mask).unwrap_or(0) {
                0 => null.clone(),
                n => numbering
                    .values
                    .get(n as usize - 1)
                    .cloned()
                    .unwrap_or_else(|| null.clone()),
            });
        let array: ArrayRef = if keys.is_empty() {
            datafusion::arrow::array::new_empty_array(data_type)
        } else {
            ScalarValue::iter_to_array(values)?
        };
        answer(array, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Int32Array, RecordBatch, StringArray, StringViewArray, TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::functions_aggregate::expr_fn::count;
    use datafusion::logical_expr::{ExprSchemable, col, lit};
    use datafusion::prelude::{DataFrame, SessionContext};

    /// The rows of a result as sorted text lines.
    async fn lines(df: DataFrame) -> Vec<String> {
        let mut lines: Vec<String> = df
            .collect()
            .await
            .unwrap()
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).map(move |i| {
                    b.columns()
                        .iter()
                        .map(|c| array_value_to_string(c, i).unwrap())
                        .collect::<Vec<_>>()
                        .join("|")
                })
            })
            .collect();
        lines.sort();
        lines
    }

    /// Counts by `dims`, grouped as they are and on a packed key.
    async fn both(batches: Vec<RecordBatch>, dims: &[&str]) -> (Vec<String>, Vec<String>) {
        let df = SessionContext::new().read_batches(batches).unwrap();
        let group: Vec<Expr> = dims.iter().map(|d| col(*d)).collect();
        let plain = df
            .clone()
            .aggregate(group.clone(), vec![count(lit(1)).alias("n")])
            .unwrap();
        let types = group
            .iter()
            .map(|e| e.get_type(df.schema()).unwrap())
            .collect();
        let packing = KeyPacking::new(types).unwrap();
        let packed = df
            .aggregate(
                vec![packing.pack(group).alias("key")],
                vec![count(lit(1)).alias("n")],
            )
            .unwrap();
        let mut columns: Vec<Expr> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| packing.unpack(i, col("key")).alias(*d))
            .collect();
        columns.push(col("n"));
        let packed = packed.select(columns).unwrap();
        (lines(plain).await, lines(packed).await)
    }

    const TEXTS: [Option<&str>; 6] = [
        Some("suap"),
        Some("sua"),
        Some("iscrizione_scuola_infanzia"),
        Some("iscrizione_scuola_primaria"),
        Some(""),
        None,
    ];

    fn batch(rows: &[(usize, usize, Option<i32>, i64)]) -> RecordBatch {
        let text = |i: usize| TEXTS[i % TEXTS.len()];
        let schema = Arc::new(Schema::new(vec![
            Field::new("view", DataType::Utf8View, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("year", DataType::Int32, true),
            Field::new(
                "month",
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
                false,
            ),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringViewArray::from_iter(rows.iter().map(|r| text(r.0)))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| text(r.1)))),
                Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|r| r.3 * 2_678_400_000_000),
                )),
            ],
        )
        .unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// Grouping on a packed key gives the groups and counts of grouping on the columns,
        /// for texts (short and long, with nulls, in runs and scattered), integers and
        /// timestamps, over several batches.
        #[test]
        fn packed_keys_group_as_the_columns_do(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    (0usize..6, 0usize..6, proptest::option::of(2015i32..2019), 0i64..30),
                    1..60,
                ),
                1..4,
            ),
            dims in proptest::sample::subsequence(vec!["view", "text", "year", "month"], 1..=4),
        ) {
            let mut batches: Vec<RecordBatch> = batches.iter().map(|rows| batch(rows)).collect();
            // A run of equal values, as a sorted warehouse holds them.
            batches.push(batch(&[(2, 2, Some(2017), 3); 20]));
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (plain, packed) = runtime.block_on(both(batches, &dims));
            proptest::prop_assert_eq!(plain, packed);
        }
    }

    #[test]
    fn breakdowns_it_cannot_pack_are_left_to_the_engine() {
        assert!(KeyPacking::new(vec![]).is_none());
        assert!(KeyPacking::new(vec![DataType::Float64]).is_none());
        assert!(KeyPacking::new(vec![DataType::Utf8View; MAX_DIMENSIONS + 1]).is_none());
        assert!(KeyPacking::new(vec![DataType::Utf8View, DataType::Int32]).is_some());
    }
}
