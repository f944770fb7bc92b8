//! The hidden layers' activation functions: scikit-learn's four (`MLPClassifier(activation=...)`),
//! with their derivatives written, as scikit-learn's `inplace_*_derivative`, in terms of the
//! activation's output (what the forward pass keeps).

/// A hidden layer's activation function, named as scikit-learn names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// f(x) = x (no non-linearity).
    Identity,
    /// The logistic sigmoid f(x) = 1 / (1 + exp(-x)) (scipy's `expit`).
    Logistic,
    /// The hyperbolic tangent.
    Tanh,
    /// The rectified linear unit f(x) = max(x, 0): scikit-learn's default.
    #[default]
    Relu,
}

impl Activation {
    /// Every activation, in scikit-learn's documentation order.
    pub const ALL: [Activation; 4] = [
        Activation::Identity,
        Activation::Logistic,
        Activation::Tanh,
        Activation::Relu,
    ];

    /// scikit-learn's name: `identity`, `logistic`, `tanh` or `relu`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Logistic => "logistic",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
        }
    }

    /// The activation of scikit-learn's name (exactly as `name` spells it), if any.
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == name)
    }

    /// f(x) in f32.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Logistic => logistic(x),
            Activation::Tanh => x.tanh(),
            // Branch-free, and 0 (not -0 or NaN's sign) below zero, as `np.maximum(x, 0)`.
            Activation::Relu => x.max(0.0),
        }
    }

    /// f(x) in f64 (for exactness checks).
    #[inline]
    pub fn apply_f64(self, x: f64) -> f64 {
        match self {
            Activation::Identity => x,
            Activation::Logistic => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(0.0),
        }
    }

    /// f(x) of every value, in place.
    pub fn apply_slice(self, values: &mut [f32]) {
        match self {
            Activation::Identity => {}
            // A loop the compiler vectorises.
            Activation::Relu => {
                for v in values {
                    *v = v.max(0.0);
                }
            }
            _ => {
                for v in values {
                    *v = self.apply(*v);
                }
            }
        }
    }

    /// f'(x) from the output a = f(x), as scikit-learn's `inplace_*_derivative` compute it:
    /// identity 1, logistic a (1 - a), tanh 1 - a^2, relu 0 where a == 0 (so 0 at the kink
    /// x = 0) and 1 elsewhere.
    #[inline]
    pub fn derivative_from_output(self, a: f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Logistic => a * (1.0 - a),
            Activation::Tanh => 1.0 - a * a,
            Activation::Relu => {
                if a == 0.0 {
                    0.0
                } else {
                    1.0
                }
            }
        }
    }

    /// `delta *= f'` elementwise, with f' taken from the outputs `a` (scikit-learn's
    /// `inplace_*_derivative(Z, delta)`, the same operations in the same order: logistic
    /// `delta *= Z; delta *= 1 - Z`, tanh `delta *= 1 - Z**2`, relu `delta[Z == 0] = 0`).
    pub fn multiply_derivative(self, delta: &mut [f32], a: &[f32]) {
        assert_eq!(delta.len(), a.len(), "one output per delta");
        match self {
            Activation::Identity => {}
            Activation::Logistic => {
                for (d, &z) in delta.iter_mut().zip(a) {
                    *d = *d * z * (1.0 - z);
                }
            }
            Activation::Tanh => {
                for (d, &z) in delta.iter_mut().zip(a) {
                    *d *= 1.0 - z * z;
                }
            }
            // Branch-free (a store for every element), so that it vectorises.
            Activation::Relu => {
                for (d, &z) in delta.iter_mut().zip(a) {
                    *d = if z == 0.0 { 0.0 } else { *d };
                }
            }
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The logistic sigmoid in f32 without overflow: exp of a non-positive number only.
#[inline]
fn logistic(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for a in Activation::ALL {
            assert_eq!(Activation::from_name(a.name()), Some(a));
        }
        assert_eq!(Activation::default(), Activation::Relu);
        assert_eq!(Activation::from_name("sigmoid"), None);
        assert_eq!(Activation::from_name("ReLU"), None);
    }

    /// Values worked out by hand: logistic(0) = 1/2, logistic(ln 3) = 3/4, tanh(ln 2) =
    /// (2 - 1/2) / (2 + 1/2) = 0.6; the derivatives from the outputs: 1/4, 3/16, 1 - 0.36.
    #[test]
    fn hand_computed_values_and_derivatives() {
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(close(Activation::Logistic.apply(0.0), 0.5));
        assert!(close(Activation::Logistic.apply(3f32.ln()), 0.75));
        assert!(close(Activation::Logistic.apply(-3f32.ln()), 0.25));
        assert!(close(Activation::Tanh.apply(2f32.ln()), 0.6));
        assert_eq!(Activation::Relu.apply(-2.0), 0.0);
        assert_eq!(Activation::Relu.apply(1.5), 1.5);
        assert_eq!(Activation::Identity.apply(-1.5), -1.5);
        // Far from 0 the logistic saturates without overflowing to NaN.
        assert_eq!(Activation::Logistic.apply(-200.0), 0.0);
        assert_eq!(Activation::Logistic.apply(200.0), 1.0);
        assert!(close(
            Activation::Logistic.derivative_from_output(0.5),
            0.25
        ));
        assert!(close(
            Activation::Logistic.derivative_from_output(0.75),
            0.1875
        ));
        assert!(close(Activation::Tanh.derivative_from_output(0.6), 0.64));
        assert_eq!(Activation::Relu.derivative_from_output(0.0), 0.0);
        assert_eq!(Activation::Relu.derivative_from_output(0.3), 1.0);
        assert_eq!(Activation::Identity.derivative_from_output(-7.0), 1.0);
    }

    /// Each derivative against a central finite difference of `apply_f64` at points away from
    /// the ReLU's kink; `multiply_derivative` against the scalar rule.
    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-4;
        for a in Activation::ALL {
            for &x in &[-2.5f32, -0.7, -0.1, 0.2, 0.9, 3.0] {
                let fd =
                    (a.apply_f64(f64::from(x) + h) - a.apply_f64(f64::from(x) - h)) / (2.0 * h);
                let got = f64::from(a.derivative_from_output(a.apply(x)));
                assert!((got - fd).abs() < 1e-5, "{a} at {x}: {got} vs {fd}");
                let mut delta = [2.0f32];
                a.multiply_derivative(&mut delta, &[a.apply(x)]);
                assert!((f64::from(delta[0]) - 2.0 * fd).abs() < 2e-5, "{a} at {x}");
            }
        }
    }
}
