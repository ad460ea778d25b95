//! The PTX of representative kernels, pinned: a sigmoid layer's forward kernel, a bias
//! gradient's column sum, a small MLP's Fisher product (tangent and backward kernels),
//! softmax rows, convolution patches (im2col and col2im), the f32 exp routine and the
//! optimizers' vector operations. `ptxas` checks the whole Curves modules (tests/ptxas.rs).

use natgrad_ir::nn::{self, Activation};
use natgrad_ir::{Builder, DType, Graph, Shape};
use natgrad_lower::math::Function;
use natgrad_lower::{Partition, Plan};
use natgrad_ptx::{Arch, func, module};

fn ptx(graph: &Graph, partition: &Partition, dtype: DType) -> String {
    module(&Plan::build(graph, partition, dtype, true).unwrap(), Arch::Sm90).text
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({ snapshot_path => "../../../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn sigmoid_layer_forward_f32() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[4]));
    let w = b.param("w", Shape::fixed(&[4, 3]));
    let bias = b.param("b", Shape::fixed(&[3]));
    let graph = b.finish(&[&(x.matmul(&w) + &bias).sigmoid()]).unwrap();
    snapshot("ptx_sigmoid_layer_f32", &ptx(&graph, &Partition::single(), DType::F32));
}

#[test]
fn bias_gradient_column_sum_f64() {
    let b = Builder::new(DType::F64);
    let delta = b.input("delta", Shape::batched(&[3]));
    let h = b.input("h", Shape::batched(&[3]));
    let local = &delta * &(&h * &(h.constant(1.0) - &h));
    let graph = b.finish(&[&local, &local.sum(&[0], false)]).unwrap();
    snapshot("ptx_bias_sum_f64", &ptx(&graph, &Partition::single(), DType::F64));
}

#[test]
fn fisher_product_of_a_small_mlp_f32() {
    let model = nn::mlp(&[3, 4, 2], &[Activation::Tanh, Activation::Softmax], DType::F32).unwrap();
    let product = natgrad_autodiff::fisher_product(&model).unwrap();
    snapshot("ptx_fisher_mlp_f32", &ptx(&product.graph, &Partition::new(product.phases()), DType::F32));
}

#[test]
fn softmax_rows_f32() {
    let b = Builder::new(DType::F32);
    let x = b.input("x", Shape::batched(&[4]));
    let graph = b.finish(&[&x.softmax(1)]).unwrap();
    snapshot("ptx_softmax_rows_f32", &ptx(&graph, &Partition::single(), DType::F32));
}

#[test]
fn exp_routine_f32() {
    snapshot("ptx_exp_f32", &func::func(Function::Exp, DType::F32));
}

#[test]
fn convolution_patches_f32() {
    let text = format!(
        "{}\n{}",
        natgrad_ptx::patches::im2col("im2col", DType::F32),
        natgrad_ptx::patches::col2im("col2im", DType::F32)
    );
    snapshot("ptx_patches_f32", &text);
}

#[test]
fn optimizer_vector_operations_f32() {
    let text = natgrad_ptx::vectors::module(DType::F32, Arch::Sm90);
    let entries = text.find(".visible .entry").expect("the module has entries");
    snapshot("ptx_vectors_f32", &text[entries..]);
}
