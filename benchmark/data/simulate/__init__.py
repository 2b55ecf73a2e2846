"""A planted-observer simulator that writes a dataset shaped like the IMI human-response release.

Every unit (model, layer, channel) gets a clarity c in [0, 1] per mode and a visual concept (hue, stripe
orientation and frequency, shape). Its true median-participant accuracy is
t = accuracy_floor + (accuracy_ceiling - accuracy_floor) * c; a participant with ability offset a ~ N(0, sd)
answers correctly with probability sigmoid(logit(t) + a). The stimulus images carry the clarity: reference
images show the unit's concept with strength ~c, blended with a random distractor, so an image-similarity
proxy can recover c from the pictures alone, while the queries always show the concept clearly.
The concept is stored in simulation/truth.csv, so SimulatedActivationMaps can give each unit's activation map on
any image (concept_activation_map: hue match x stripe-filter energy) for proxies that need activation maps.

Conventions of the simulated release (as in the real one): `choice` "b" is the max query, "a" the min query,
and `correct` is true exactly when "b" was chosen. Each participation (HIT) covers one model and one mode;
`task_number` numbers the HITs of that (model, mode) experiment from 1. Participants who fail the checks
redo the trial list of an existing HIT, answer at random and go to the lower-quality file.
`button_pressed` 0-5: buttons 0, 1, 2 choose the left query with confidence 3, 2, 1 and buttons 3, 4, 5 the
right query with confidence 1, 2, 3; the max query is on the right unless `switched_queries`.
Demo rows carry their HIT's model and mode with empty layer, channel and batch; catch rows have model
"catch/manual", mode "catch_trial", batch -1 and empty layer and channel.

Modules: `config` (SimulationConfig, column layouts), `observer` (planted units, participants and trials),
`images` (concepts, rendering, activation maps) and `release` (writing a release, SimulatedActivationMaps).
"""

from benchmark.data.simulate.config import (
    CATCH_MODE,
    CATCH_MODEL,
    CONCEPT_COLUMNS,
    RELEASE_COLUMNS,
    SIDES,
    TRUTH_COLUMNS,
    SimulationConfig,
)
from benchmark.data.simulate.images import (
    UnitConcept,
    UnitImages,
    concept_activation_map,
    concept_activation_maps,
    render_unit_images,
)
from benchmark.data.simulate.observer import (
    SimulatedRelease,
    expected_ceiling,
    population_accuracy,
    simulate_responses,
)
from benchmark.data.simulate.release import SimulatedActivationMaps, write_release

__all__ = [
    "CATCH_MODE",
    "CATCH_MODEL",
    "CONCEPT_COLUMNS",
    "RELEASE_COLUMNS",
    "SIDES",
    "TRUTH_COLUMNS",
    "SimulatedActivationMaps",
    "SimulatedRelease",
    "SimulationConfig",
    "UnitConcept",
    "UnitImages",
    "concept_activation_map",
    "concept_activation_maps",
    "expected_ceiling",
    "population_accuracy",
    "render_unit_images",
    "simulate_responses",
    "write_release",
]
