"""Audio data: readers (:mod:`~rq_audio.data.audio_io`), EVAR metadata.csv files
(:mod:`~rq_audio.data.metadata`), the HDF5 clip caches the loaders read
(:mod:`~rq_audio.data.hdf5_cache`), the paper's downstream tasks (:mod:`~rq_audio.data.tasks`)
and the offline demo corpus generator (:mod:`~rq_audio.data.corpus`)."""
