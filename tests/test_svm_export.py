"""The SVM exported as plain weights computes what scikit-learn computes, with numpy alone."""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from alledge.train.svm_export import export_svm  # noqa: E402
from alledge.device.svm import SvmError, load_svm  # noqa: E402

CLASSES = ["Benign", "Early", "Pre", "Pro"]


def features(seed=0):
    x, y = make_classification(n_samples=400, n_features=24, n_informative=10,
                               n_classes=4, n_clusters_per_class=2, class_sep=0.8,
                               random_state=seed)
    x = x * np.linspace(0.5, 20, x.shape[1]) + 3.0  # unscaled features, as CNN features are
    return x[:300], y[:300], x[300:]


def fit(kernel, x, y, **svc):
    pipe = Pipeline([("scaler", StandardScaler()), ("svc", SVC(kernel=kernel, **svc))])
    return CalibratedClassifierCV(pipe, method="sigmoid", cv=3, ensemble=False).fit(x, y)


@pytest.fixture(scope="module", params=[("linear", {"C": 0.1}), ("rbf", {"C": 10.0})],
                ids=["linear", "rbf"])
def exported(request, tmp_path_factory):
    kernel, params = request.param
    x, y, x_test = features()
    model = fit(kernel, x, y, **params)
    path = export_svm(model, tmp_path_factory.mktemp(kernel) / "svm.npz", class_names=CLASSES)
    return model, load_svm(path), x_test


def test_decision_values_equal_sklearn(exported):
    model, svm, x = exported
    svc_pipe = model.calibrated_classifiers_[0].estimator
    np.testing.assert_allclose(svm.decision_function(x), svc_pipe.decision_function(x),
                               rtol=0, atol=1e-6)


def test_labels_identical(exported):
    model, svm, x = exported
    assert np.array_equal(svm.predict(x), model.predict(x))


def test_probabilities_equal_calibrated_classifier(exported):
    model, svm, x = exported
    np.testing.assert_allclose(svm.predict_proba(x), model.predict_proba(x), rtol=0, atol=1e-6)


def test_class_names_in_label_order(exported):
    assert exported[1].classes == tuple(CLASSES)


def test_reads_without_pickle(exported, tmp_path):
    model = exported[0]
    path = export_svm(model, tmp_path / "svm.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert str(npz["format"]) == "alledge-svm/1"
        assert all(npz[k].dtype != object for k in npz.files)


def test_refuses_other_models():
    x, y, _ = features()
    with pytest.raises(ValueError, match="CalibratedClassifierCV"):
        export_svm(SVC().fit(x, y), "never.npz")
    ensemble = CalibratedClassifierCV(
        Pipeline([("scaler", StandardScaler()), ("svc", SVC())]), cv=3).fit(x, y)
    with pytest.raises(ValueError, match="ensemble=False"):
        export_svm(ensemble, "never.npz")
    poly = fit("poly", x, y)
    with pytest.raises(ValueError, match="kernel 'poly'"):
        export_svm(poly, "never.npz")


def rewrite(src, dst, **changes):
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    for k, v in list(arrays.items()):
        if v is None:
            del arrays[k]
    with open(dst, "wb") as f:
        np.savez(f, **arrays)
    return dst


@pytest.mark.parametrize("change, message", [
    ({"format": np.array("alledge-svm/99")}, "unknown format"),
    ({"kernel": np.array("sigmoid")}, "unknown kernel"),
    ({"calib_a": np.zeros(3)}, "'calib_a' has shape"),
    ({"pair_intercept": None}, "missing pair_intercept"),
    ({"scaler_scale": np.full(24, np.nan)}, "non-finite"),
    ({"gamma": np.array(["x"], dtype=object)}, "unreadable"),
])
def test_malformed_npz_is_refused_with_a_clear_message(exported, tmp_path, change, message):
    src = export_svm(exported[0], tmp_path / "svm.npz")
    bad = rewrite(src, tmp_path / "bad.npz", **change)
    with pytest.raises(SvmError, match=message) as err:
        load_svm(bad)
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_damaged_file_is_refused(exported, tmp_path):
    path = export_svm(exported[0], tmp_path / "svm.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SvmError, match="unreadable"):
        load_svm(path)
