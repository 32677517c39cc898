//! ggml tensor type ids.

use crate::dtype::{Dtype, QuantType};

/// The dtype of ggml type `id`, or the type's name (or id) when dokja cannot decode it.
pub fn dtype_of(id: u32) -> Result<Dtype, String> {
    let q = |q| Ok(Dtype::Quant(q));
    match id {
        0 => Ok(Dtype::F32),
        1 => Ok(Dtype::F16),
        2 => q(QuantType::Q4_0),
        3 => q(QuantType::Q4_1),
        6 => q(QuantType::Q5_0),
        7 => q(QuantType::Q5_1),
        8 => q(QuantType::Q8_0),
        9 => q(QuantType::Q8_1),
        10 => q(QuantType::Q2K),
        11 => q(QuantType::Q3K),
        12 => q(QuantType::Q4K),
        13 => q(QuantType::Q5K),
        14 => q(QuantType::Q6K),
        15 => q(QuantType::Q8K),
        24 => Ok(Dtype::I8),
        25 => Ok(Dtype::I16),
        26 => Ok(Dtype::I32),
        27 => Ok(Dtype::I64),
        28 => Ok(Dtype::F64),
        30 => Ok(Dtype::BF16),
        other => Err(match unsupported_name(other) {
            Some(name) => format!("ggml type {name} (id {other})"),
            None => format!("unknown ggml type id {other}"),
        }),
    }
}

/// Names of the ggml types dokja knows of but does not decode.
fn unsupported_name(id: u32) -> Option<&'static str> {
    Some(match id {
        4 => "Q4_2 (removed from ggml)",
        5 => "Q4_3 (removed from ggml)",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        29 => "IQ1_M",
        31 => "Q4_0_4_4 (removed from ggml)",
        32 => "Q4_0_4_8 (removed from ggml)",
        33 => "Q4_0_8_8 (removed from ggml)",
        34 => "TQ1_0",
        35 => "TQ2_0",
        36 => "IQ4_NL_4_4 (removed from ggml)",
        37 => "IQ4_NL_4_8 (removed from ggml)",
        38 => "IQ4_NL_8_8 (removed from ggml)",
        39 => "MXFP4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_dtypes() {
        assert_eq!(dtype_of(0), Ok(Dtype::F32));
        assert_eq!(dtype_of(30), Ok(Dtype::BF16));
        assert_eq!(dtype_of(14), Ok(Dtype::Quant(QuantType::Q6K)));
        assert!(dtype_of(16).unwrap_err().contains("IQ2_XXS"));
        assert!(dtype_of(39).unwrap_err().contains("MXFP4"));
        assert!(dtype_of(1000).unwrap_err().contains("1000"));
    }
}
