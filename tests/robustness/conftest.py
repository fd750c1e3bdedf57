from tests.backbones.conftest import tiny_paper_models, tiny_paper_profile  # noqa: F401  (fixtures)
from tests.helpers.run_folders import audio_text_data, trained_run  # noqa: F401  (fixtures)
