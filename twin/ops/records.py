"""The tables a run writes: their columns, units and meaning, in one place.

Why one module: the operations engine writes these rows, the reports, the frame
renderer, the envs and users' notebooks read them. A column renamed here is renamed
everywhere; nobody guesses a unit.

All times are MJD (UTC) floats, angles degrees, durations seconds.
"""

from __future__ import annotations

import pyarrow as pa

from twin.programme import constraints

OBSERVATION_SCHEMA = pa.schema(
    [
        ("obs_id", pa.int64()),  # unique in the run, increasing with completion time
        ("visit_id", pa.int64()),  # the visit (one policy decision) this exposure belongs to
        ("exposure_index", pa.int32()),  # 0.. within the visit
        ("night", pa.int32()),  # index of the run's night (0 = first evening)
        ("site", pa.string()),
        ("site_lat_deg", pa.float64()),
        ("site_lon_deg", pa.float64()),
        ("site_height_m", pa.float64()),
        ("telescope", pa.string()),
        ("request_id", pa.string()),
        ("program", pa.string()),
        ("target_id", pa.string()),
        ("alert_id", pa.string()),  # "" unless the request follows an alert
        ("ra_deg", pa.float64()),  # ICRS of the target (the request's coordinates)
        ("dec_deg", pa.float64()),
        ("band", pa.string()),
        ("exptime_s", pa.float64()),
        ("mjd_start", pa.float64()),  # shutter opens
        ("mjd_end", pa.float64()),  # shutter closes (mjd_start + exptime_s)
        ("alt_deg", pa.float64()),  # at mjd_start, refraction not applied
        ("az_deg", pa.float64()),
        ("airmass", pa.float64()),
        ("hour_angle_h", pa.float64()),
        ("alt_end_deg", pa.float64()),  # at mjd_end: constraints hold over the whole exposure
        ("az_end_deg", pa.float64()),
        ("airmass_end", pa.float64()),
        ("sun_alt_end_deg", pa.float64()),
        ("sun_alt_deg", pa.float64()),
        ("moon_alt_deg", pa.float64()),
        ("moon_sep_deg", pa.float64()),
        ("moon_illum", pa.float64()),
        ("sky_mag_arcsec2", pa.float64()),  # AB mag/arcsec^2 in the band, at mjd_start
        ("seeing_zenith_arcsec", pa.float64()),  # atmosphere at zenith, 500 nm (truth)
        ("seeing_fwhm_arcsec", pa.float64()),  # delivered: airmass, band, static optics
        ("image_fwhm_arcsec", pa.float64()),  # delivered seeing with the defocus in quadrature
        ("transparency", pa.float64()),  # cloud transmission 0..1 (truth)
        ("cloud_cover", pa.float64()),
        ("zeropoint_mag", pa.float64()),  # AB mag giving 1 e-/s at airmass 0, with throughput
        ("m5", pa.float64()),  # 5-sigma point-source depth of this exposure (truth)
        ("quality", pa.float64()),  # effective-time ratio vs the reference exposure, 0..1
        ("value", pa.float64()),  # science value credited to this exposure
        ("slew_s", pa.float64()),  # slew/settle/filter time before this exposure (0 after the 1st)
        ("transient_mag", pa.float64()),  # truth magnitude of the alert's transient, NaN if none
        ("detected", pa.bool_()),  # the transient is above this exposure's m5
        # Equipment truth, for the frame renderer (twin.equipment.EquipmentState).
        ("focus_offset_um", pa.float64()),
        ("defocus_fwhm_arcsec", pa.float64()),
        ("throughput", pa.float64()),
        ("pointing_error_ra_arcsec", pa.float64()),
        ("pointing_error_dec_arcsec", pa.float64()),
        ("tracking_error_arcsec", pa.float64()),
        ("tracking_pa_deg", pa.float64()),
        ("n_hot_pixels", pa.int64()),
        ("n_bad_columns", pa.int64()),
        ("calibration_age_days", pa.float64()),
        ("zeropoint_error_mag", pa.float64()),
    ]
)
"""One row per science exposure (``observations.parquet``)."""

EVENT_KINDS = (
    "night_start",  # site's sun below the observing limit (detail: "dusk")
    "night_end",
    "dome_close",  # detail: the rule that closed it (weather)
    "dome_open",
    "failure",  # detail: component
    "repair",
    "link_down",
    "link_up",
    "alert_issued",  # external broker issues the alert (ref: alert_id, detail: kind)
    "alert_received",  # the centre has it (value: latency s)
    "request_released",  # a follow-up request reaches a site (ref: request_id)
    "alert_followed",  # first follow-up exposure of an alert (value: response latency s)
    "alert_detected",  # a follow-up exposure detected the transient
    "confirmation_requested",  # the centre asks another site to confirm
    "alert_confirmed",  # a second site detected it
    "exposure_aborted",  # dome closed, failure or night end cut an exposure
    "visit_cut",  # conditions fell below a request's limits between exposures
    "calibration",  # detail: bias|dark|twilight_flat, value: frames
    "data_delivered",  # a night's data reached the centre (value: bytes)
    "frame_rejected",  # a pipeline stage's result put a frame below its programme's threshold
    "visit_repeated",  # the centre asked for the visit again (ref: request_id)
    "refocus",  # the centre's refocus order reached the telescope (detail: why)
    "mount_service",  # a service the centre ordered for tracking flags (detail: why, outcome)
    "asteroid_recognised",  # two real candidates moving at an asteroid's rate (value: deg/day)
    "fused_product",  # the centre fused a group (ref: field; value: depth gain, mag)
)

EVENT_SCHEMA = pa.schema(
    [
        ("mjd", pa.float64()),
        ("kind", pa.string()),  # one of EVENT_KINDS
        ("site", pa.string()),  # "" for the centre
        ("telescope", pa.string()),  # "" for site- or network-wide events
        ("ref", pa.string()),  # alert_id, request_id or component
        ("detail", pa.string()),
        ("value", pa.float64()),  # NaN when not meaningful
    ]
)
"""One row per discrete event (``events.parquet``)."""

TIMELINE_STATES = (
    "science",  # shutter open
    "readout",
    "slew",  # slew, settle, filter change
    "weather",  # dome closed by the weather
    "failure",  # a component is down
    "idle",  # open and working, but nothing feasible to do
    "aborted",  # exposure time lost to an interruption
    "calibration",  # twilight flats inside the night window
)

TIMELINE_SCHEMA = pa.schema(
    [
        ("telescope", pa.string()),
        ("site", pa.string()),
        ("night", pa.int32()),
        ("state", pa.string()),  # one of TIMELINE_STATES
        ("mjd_start", pa.float64()),
        ("mjd_end", pa.float64()),
    ]
)
"""Per telescope, intervals that partition each night window (``timeline.parquet``).

The night window of a site is when the sun is below the scenario's observing limit
(nautical twilight, -12 deg, by default). Summing ``mjd_end - mjd_start`` per state gives
the time accounting: open-shutter fraction, time lost to weather, failures, slews, readout.
"""

ALERT_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("kind", pa.string()),  # sn_ia | sn_cc | kilonova | grb_afterglow
        ("ra_deg", pa.float64()),
        ("dec_deg", pa.float64()),
        ("t0_mjd", pa.float64()),  # explosion / burst time
        ("issued_mjd", pa.float64()),  # when the external broker issued the alert
        ("peak_mag", pa.float64()),  # apparent peak magnitude in r
        ("received_mjd", pa.float64()),  # at the centre
        ("first_followup_mjd", pa.float64()),  # NaN if never followed
        ("first_followup_site", pa.string()),
        ("detected_mjd", pa.float64()),
        ("confirmed_mjd", pa.float64()),
        ("confirmed_site", pa.string()),
        ("n_exposures", pa.int64()),
    ]
)
"""One row per alert of the run (``alerts.parquet``), written at the end of the run."""

ALERT_PIPELINE_SCHEMA = pa.schema(
    [
        *ALERT_SCHEMA,
        ("source", pa.string()),  # broker | network (raised from the network's candidates)
        ("detection_method", pa.string()),  # m5 | stage: what made the detection ("" if none)
        ("detected_site", pa.string()),
        ("detected_shutter_mjd", pa.float64()),  # shutter close of the detecting frame
        ("confirmed_shutter_mjd", pa.float64()),  # shutter close of the confirming frame
    ]
)
"""``alerts.parquet`` of a run with a pipeline: the same columns and the detections' source
and method (a run without one keeps :data:`ALERT_SCHEMA`, as its golden digests do)."""

CANDIDATE_CLASSES = (
    "transient",  # stationary in two frames of its field, no known alert: a network alert
    "asteroid",  # moved between two frames at an asteroid's rate: recognised, not followed
    "known-alert",  # within the match radius of an alert the centre knows (a detection)
    "bogus",  # the stage's classifier said bogus
    "single",  # real, but no counterpart in the field's next frame (or none came in time)
    "negative",  # real, fainter than the reference (a fading source): never an alert
    "variable",  # real, on a catalogue star (a variable star, a flare): never an alert
    "unsent",  # its frame's results had not reached the centre when the run ended
    "weak",  # real, below the classifier's alert grade, unexplained: not raised
)

CANDIDATE_SCHEMA = pa.schema(
    [
        ("obs_id", pa.int64()),
        ("visit_id", pa.int64()),
        ("site", pa.string()),
        ("telescope", pa.string()),
        ("request_id", pa.string()),
        ("band", pa.string()),
        ("stage", pa.string()),
        ("model_version", pa.string()),
        ("mjd_shutter_close", pa.float64()),  # the frame's shutter closed
        ("mjd_received", pa.float64()),  # the candidate reached the centre
        ("mjd_classified", pa.float64()),  # the centre decided its class
        ("ra_deg", pa.float64()),  # through the frame's refined WCS
        ("dec_deg", pa.float64()),
        ("x_pix", pa.float64()),  # 0-based, in the (central, frame_size_pix) frame
        ("y_pix", pa.float64()),
        ("scorr", pa.float64()),  # signed Scorr peak, sigma
        ("sign", pa.int32()),  # +1 brighter than the reference, -1 fainter
        ("flux_e", pa.float64()),  # difference-image flux, electrons
        ("flux_err_e", pa.float64()),
        ("mag", pa.float64()),  # AB, from flux_e and the header zero point; NaN if <= 0
        ("mag_err", pa.float64()),
        ("real_prob", pa.float64()),  # the classifier's probability of real
        ("is_real", pa.bool_()),
        ("centre_class", pa.string()),  # one of CANDIDATE_CLASSES
        ("alert_id", pa.string()),  # the alert it detected or raised ("" if none)
        # Truth (never seen by the stage or the centre): the nearest truth source that is
        # not static sky (a transient, an asteroid, a variable) within TRUTH_MATCH_PIX.
        ("truth_kind", pa.string()),  # population kind, else the truth type; "" if none
        ("truth_id", pa.string()),  # population id, else the alert id or source id
        ("truth_mag", pa.float64()),  # its magnitude in the frame's band
        ("truth_sep_pix", pa.float64()),
    ]
)
"""One row per candidate of a run whose pipeline finds transients (``candidates.parquet``,
streamed one part per day like the observations); a candidate the centre held for the next
frame of its field is written when its class is decided."""

NIGHT_SCHEMA = pa.schema(
    [
        ("site", pa.string()),
        ("night", pa.int32()),
        ("mjd_start", pa.float64()),  # sun below the observing limit
        ("mjd_end", pa.float64()),
        ("hours", pa.float64()),
    ]
)
"""The night windows of each site (``nights.parquet``)."""


def request_schema() -> pa.Schema:
    """The requests table's schema, with one limit column per rule in force
    (:func:`twin.programme.constraints.rules`)."""
    return pa.schema(
        [
            ("request_id", pa.string()),
            ("program", pa.string()),
            ("target_id", pa.string()),
            ("alert_id", pa.string()),
            ("ra_deg", pa.float64()),
            ("dec_deg", pa.float64()),
            ("priority", pa.float64()),
            # +inf (a max) or -inf (a min) where the request sets no limit
            *((field, pa.float64()) for field in constraints.limit_fields()),
            ("window_start_mjd", pa.list_(pa.float64())),  # empty lists: any time
            ("window_end_mjd", pa.list_(pa.float64())),
            ("sites", pa.list_(pa.string())),  # empty: any site
            ("visits_wanted", pa.int64()),  # 0: repeat with the cadence for the whole run
            ("cadence_days", pa.float64()),  # NaN: no cadence
            ("visit_exptime_s", pa.float64()),
            ("created_mjd", pa.float64()),
            ("visits_done", pa.int64()),
        ]
    )


REQUEST_SCHEMA = request_schema()
"""Every request the run knew, including follow-ups created by alerts (``requests.parquet``).

Seeing and transparency limits apply at the start of each exposure (the site's monitors
measure the conditions then); geometric limits (airmass, horizon, sun, moon) hold over the
whole exposure, so the log records the geometry at both ends.
"""

FLAG_NAMES = ("cloud", "bad_seeing", "tracking", "focus", "sensor", "trail", "bright_sky")
"""The frame-quality flags (issue 11): every quality stage reports a probability for
each (twin.pipeline.stage), and pipeline.parquet has one column per flag."""
FLAG_COLUMNS = tuple(f"flag_{name}" for name in FLAG_NAMES)

PIPELINE_SCHEMA = pa.schema(
    [
        ("obs_id", pa.int64()),
        ("visit_id", pa.int64()),
        ("site", pa.string()),
        ("telescope", pa.string()),
        ("request_id", pa.string()),
        ("program", pa.string()),
        ("stage", pa.string()),  # the stage's registered name
        ("model_version", pa.string()),
        ("score", pa.float64()),  # 0..100, 100 x predicted effective-time ratio; NaN if none
        ("seeing_arcsec", pa.float64()),  # measured image FWHM; NaN if not measured
        ("anomaly", pa.float64()),  # anomaly score; NaN if not measured
        *((name, pa.float64()) for name in FLAG_COLUMNS),  # probabilities; NaN if not given
        ("active_flags", pa.list_(pa.string())),  # flags at or above the threshold
        ("mjd_done", pa.float64()),  # the site has the result (readout + processing)
        ("mjd_received", pa.float64()),  # the centre has it (over the site's link)
        ("accepted", pa.bool_()),  # the frame counts (score at or above its threshold)
        ("action", pa.string()),  # "" | "repeat": what the centre did
    ]
)
"""One row per frame and stage of a run with a pipeline (``pipeline.parquet``); the truth
of the same exposure is its ``observations`` row (same ``obs_id``)."""
