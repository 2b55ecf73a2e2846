"""A planted-observer simulator that writes a dataset shaped like the IMI human-response release.

Every unit (model, layer, channel) gets a clarity c in [0, 1] per mode (with a per-model shift: 9 models whose
natural means span about 0.10 in accuracy; natural about 0.1 above optimized, as in IMI), a visual concept (hue,
stripe orientation and frequency, shape) and, per task, a query typicality q drawn around its natural clarity.
A task's median-participant accuracy is t = floor + (ceiling - floor) * 0.4 c + 0.6 q; a participant with ability
offset a ~ N(0, sd) answers correctly with probability sigmoid(logit(t) + a). The stimulus images carry both:
reference images show the unit's concept with strength ~c, blended with a random distractor, and each task's
queries show it with strength ~q, so a proxy that compares queries with references (MIS) can recover more of the
truth than one that looks at the references alone (coherence). simulation/summary.json reports, per mode, the
realised correlation of true and observed accuracy in the release, beside the analytic expectation.
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
    SIMULATOR_VERSION,
    SimulatedRelease,
    expected_ceiling,
    population_accuracy,
    realised_correlation,
    simulate_responses,
)
from benchmark.data.simulate.release import SimulatedActivationMaps, simulation_origin, write_release

__all__ = [
    "CATCH_MODE",
    "CATCH_MODEL",
    "CONCEPT_COLUMNS",
    "RELEASE_COLUMNS",
    "SIDES",
    "SIMULATOR_VERSION",
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
    "realised_correlation",
    "render_unit_images",
    "simulate_responses",
    "simulation_origin",
    "write_release",
]
