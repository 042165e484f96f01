"""Export alt-profanity-check's model (TF-IDF + 5 calibrated LinearSVCs) to a numpy file.

The comprehend service's local toxicity backend runs this model with numpy alone: scikit-learn
takes 1.8 s to import, more than the whole cold-start budget, and 150 MB of the Lambda artefact.
``tests/unit/services/test_offensive_model.py`` checks the exported model gives scikit-learn's
probabilities.

Run: ``uv run python services/comprehend/scripts/export_offensive_model.py``
(alt-profanity-check 1.9.1 is a development dependency; its model is MIT-licensed.)
"""

from __future__ import annotations

from importlib import metadata, resources
from pathlib import Path

import joblib
import numpy as np

TARGET = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "llmmon_comprehend"
    / "data"
    / "offensive-language.npz"
)


def main() -> None:
    data = resources.files("profanity_check") / "data"
    vectorizer = joblib.load(data / "vectorizer.joblib")
    model = joblib.load(data / "model.joblib")
    params = vectorizer.get_params()
    assert params["analyzer"] == "word" and params["ngram_range"] == (1, 1)
    assert params["lowercase"] and params["norm"] == "l2" and params["use_idf"]
    assert not params["sublinear_tf"] and params["token_pattern"] == r"(?u)\b\w\w+\b"
    words = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.get)
    coefs, intercepts, cal_a, cal_b = [], [], [], []
    for calibrated in model.calibrated_classifiers_:
        (calibrator,) = calibrated.calibrators
        coefs.append(calibrated.estimator.coef_.ravel())
        intercepts.append(calibrated.estimator.intercept_[0])
        cal_a.append(calibrator.a_)
        cal_b.append(calibrator.b_)
    np.savez_compressed(
        TARGET,
        words=np.array("\n".join(words)),
        idf=vectorizer.idf_.astype(np.float64),
        coef=np.array(coefs, dtype=np.float64),
        intercept=np.array(intercepts, dtype=np.float64),
        cal_a=np.array(cal_a, dtype=np.float64),
        cal_b=np.array(cal_b, dtype=np.float64),
        source=np.array(f"alt-profanity-check {metadata.version('alt-profanity-check')}"),
    )
    print(f"wrote {TARGET} ({TARGET.stat().st_size / 1024:.0f} KB, {len(words)} words)")


if __name__ == "__main__":
    main()
