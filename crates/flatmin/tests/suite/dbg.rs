use crate::common::*;
use flatmin::SamConfig;

#[test]
fn dbg_ae() {
    let device = device();
    let data = Data::new(11, &device);
    let base = SamConfig::sgd_base(0.9, 5e-4);
    for (t, lr) in [(10u64, 0.05), (1000, 0.05), (6, 0.1), (1000, 0.1), (100, 0.1), (20, 0.1)] {
        let mut o = SamConfig::preset("ae-sam", base.clone()).unwrap().for_run(t, 100).init().unwrap();
        let (_, _, r) = train(&mut o, Mlp::new(3, &device), &data, 20, lr);
        println!("T {t} lr {lr}: {:?}", r.iter().map(|r| r.second_pass as u8).collect::<Vec<_>>());
    }
}
