//! What the crate's DataFusion functions share: they take columns and give one back, whether
//! DataFusion hands them whole columns or single values.

use datafusion::arrow::array::ArrayRef;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs};

/// The one argument of function `name` as a column, and whether it came as a single value.
pub(crate) fn one_argument(args: &ScalarFunctionArgs, name: &str) -> Result<(ArrayRef, bool)> {
    let scalar = matches!(args.args.as_slice(), [ColumnarValue::Scalar(_)]);
    let [array] = ColumnarValue::values_to_arrays(&args.args)?
        .try_into()
        .map_err(|_| DataFusionError::Plan(format!("{name} takes one argument")))?;
    Ok((array, scalar))
}

/// `result` as DataFusion takes it back: a single value when the arguments were.
pub(crate) fn answer(result: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(if scalar {
        ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?)
    } else {
        ColumnarValue::Array(result)
    })
}
