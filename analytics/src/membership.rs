//! Whether a text column's value is one of a catalogue condition's words (`channel IN
//! ('online', 'app')`, `status <> 'abandoned'`), as a DataFusion function.
//!
//! The words of the enumerated columns are short, and a string view of up to 12 bytes holds
//! its text: such a word equals a row's value exactly when the 16 bytes of their views are
//! equal, so the test costs an integer comparison per row instead of a string comparison.
//! Longer words are compared byte by byte. Null stays null, as with SQL's `IN`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, OffsetSizeTrait};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::columnar::{answer, one_argument};

/// The longest text a string view holds inline.
const INLINE: usize = 12;

/// `value IN (words…)` for a text column.
pub(crate) fn is_one_of(value: Expr, words: &[String]) -> Expr {
    ScalarUDF::new_from_impl(IsOneOf::new(words)).call(vec![value])
}

/// The view of an inline text: its length, then its bytes.
fn inline_view(word: &str) -> Option<u128> {
    let bytes = word.as_bytes();
    if bytes.len() > INLINE {
        return None;
    }
    let mut view = [0u8; 16];
    view[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    view[4..4 + bytes.len()].copy_from_slice(bytes);
    Some(u128::from_le_bytes(view))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsOneOf {
    words: Vec<String>,
    /// Views of the words of up to 12 bytes.
    short: Vec<u128>,
    /// The longer words.
    long: Vec<String>,
    signature: Signature,
}

impl IsOneOf {
    fn new(words: &[String]) -> Self {
        IsOneOf {
            words: words.to_vec(),
            short: words.iter().filter_map(|w| inline_view(w)).collect(),
            long: words.iter().filter(|w| w.len() > INLINE).cloned().collect(),
            signature: Signature::any(1, Volatility::Immutable),
        }
    }

    fn views(&self, array: &ArrayRef) -> BooleanBuffer {
        let texts = array.as_string_view();
        let views = texts.views();
        if self.long.is_empty() {
            // One and two words (the usual conditions) as straight comparisons.
            return match *self.short.as_slice() {
                [] => BooleanBuffer::new_unset(views.len()),
                [a] => BooleanBuffer::collect_bool(views.len(), |i| views[i] == a),
                [a, b] => BooleanBuffer::collect_bool(views.len(), |i| {
                    let v = views[i];
                    (v == a) | (v == b)
                }),
                _ => BooleanBuffer::collect_bool(views.len(), |i| self.short.contains(&views[i])),
            };
        }
        BooleanBuffer::collect_bool(views.len(), |i| {
            let view = views[i];
            if (view as u32) as usize <= INLINE {
                self.short.contains(&view)
            } else {
                let text = texts.value(i);
                self.long.iter().any(|w| w == text)
            }
        })
    }

    fn texts<O: OffsetSizeTrait>(&self, array: &ArrayRef) -> BooleanBuffer {
        let texts = array.as_string::<O>();
        BooleanBuffer::collect_bool(texts.len(), |i| {
            let text = texts.value(i);
            self.words.iter().any(|w| w == text)
        })
    }
}

impl ScalarUDFImpl for IsOneOf {
    fn name(&self) -> &str {
        "is_one_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> datafusion::common::Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::common::Result<ColumnarValue> {
        let (array, scalar) = one_argument(&args, "is_one_of")?;
        let array = match array.data_type() {
            DataType::Utf8View | DataType::Utf8 | DataType::LargeUtf8 => array,
            _ => datafusion::arrow::compute::cast(&array, &DataType::Utf8View)?,
        };
        let values = match array.data_type() {
            DataType::Utf8 => self.texts::<i32>(&array),
            DataType::LargeUtf8 => self.texts::<i64>(&array),
            _ => self.views(&array),
        };
        let result: ArrayRef = Arc::new(BooleanArray::new(values, array.nulls().cloned()));
        answer(result, scalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{RecordBatch, StringArray, StringViewArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::SessionContext;

    /// `is_one_of` and DataFusion's `IN` over the same texts, as views and as plain strings.
    async fn both(texts: Vec<Option<String>>, words: Vec<String>) -> Vec<Vec<Option<bool>>> {
        let mut out = Vec::new();
        for view in [true, false] {
            let column: ArrayRef = if view {
                Arc::new(StringViewArray::from(texts.clone()))
            } else {
                Arc::new(StringArray::from(texts.clone()))
            };
            let schema = Arc::new(Schema::new(vec![Field::new(
                "t",
                column.data_type().clone(),
                true,
            )]));
            let batch = RecordBatch::try_new(schema, vec![column]).unwrap();
            let list: Vec<Expr> = words.iter().map(|w| lit(w.as_str())).collect();
            let batches = SessionContext::new()
                .read_batch(batch)
                .unwrap()
                .select(vec![
                    col("t").in_list(list.clone(), false).alias("general"),
                    is_one_of(col("t"), &words).alias("fast"),
                    col("t").in_list(list, true).alias("general_not"),
                    (!is_one_of(col("t"), &words)).alias("fast_not"),
                ])
                .unwrap()
                .collect()
                .await
                .unwrap();
            for i in 0..4 {
                out.push(
                    batches
                        .iter()
                        .flat_map(|b| b.column(i).as_boolean().iter().collect::<Vec<_>>())
                        .collect(),
                );
            }
        }
        out
    }

    #[tokio::test]
    async fn short_and_long_words_nulls_and_near_misses() {
        let texts = [
            "online",
            "onlinE",
            "app",
            "",
            "sportello_polifunzionale",
            "sportello",
        ]
        .iter()
        .map(|t| Some(t.to_string()))
        .chain([None])
        .collect();
        let words = vec!["online".to_string(), "sportello_polifunzionale".to_string()];
        let results = both(texts, words).await;
        let expected = [
            Some(true),
            Some(false),
            Some(false),
            Some(false),
            Some(true),
            Some(false),
            None,
        ];
        for (i, r) in results.iter().enumerate() {
            if i % 4 < 2 {
                assert_eq!(r, &expected, "column {i}");
            } else {
                let negated: Vec<_> = expected.iter().map(|e| e.map(|b| !b)).collect();
                assert_eq!(r, &negated, "column {i}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// Over texts and words of every length around the inline limit, `is_one_of` and its
        /// negation give what `IN` and `NOT IN` give.
        #[test]
        fn is_one_of_is_in(
            texts in proptest::collection::vec(
                proptest::option::weighted(0.9, "[ab]{0,14}"), 0..40),
            words in proptest::collection::vec("[ab]{0,14}", 1..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let results = runtime.block_on(both(texts, words));
            for pair in results.chunks(2) {
                proptest::prop_assert_eq!(&pair[0], &pair[1]);
            }
        }
    }
}
