//! placeholder: module under construction
