"""Features -> StandardScaler + SVC, grid-searched on the training split only, calibrated.

The grid is a stratified 5-fold CV over kernel (linear, rbf), C and gamma. The chosen
pipeline is then wrapped in CalibratedClassifierCV(method='sigmoid', ensemble=False): one
SVC fit on all training data, sigmoid calibrators fit on out-of-fold decision values. One
SVC (not an ensemble of five) keeps the exported plain weights small for the Pi.
(SVC(probability=True) is deprecated in scikit-learn 1.9.)
"""
import numpy as np

GRID = [
    {"svc__kernel": ["linear"], "svc__C": [0.001, 0.01, 0.1, 1.0]},
    {"svc__kernel": ["rbf"], "svc__C": [1.0, 10.0, 100.0], "svc__gamma": ["scale", 1e-3, 1e-4]},
]


def fit_svm(x, y, cv=5, seed=0, grid=GRID, n_jobs=1):
    """Returns (calibrated classifier, grid summary dict)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    pipe = Pipeline([("scaler", StandardScaler()), ("svc", SVC())])
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    search = GridSearchCV(pipe, grid, cv=folds, scoring="accuracy", n_jobs=n_jobs, refit=False)
    search.fit(x, y)
    best = pipe.set_params(**search.best_params_)
    calibrated = CalibratedClassifierCV(best, method="sigmoid", cv=folds, ensemble=False)
    calibrated.fit(x, y)
    summary = {"best_params": {k.replace("svc__", ""): v for k, v in search.best_params_.items()},
               "cv_accuracy": float(search.best_score_), "cv_folds": cv,
               "grid_size": len(search.cv_results_["params"])}
    return calibrated, summary


def predict_labels(calibrated, x):
    return np.asarray(calibrated.predict(x))
