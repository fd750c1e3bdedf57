"""Beyond one ``unknown``: group the clips a run rejects, name what each group resembles, and enrol a
new emotion from a few examples (``docs/discover.md``).

- :mod:`~openmer.discovery.cluster`: the cluster-count rule (k-means, silhouette, minimum size);
- :mod:`~openmer.discovery.words`: the open vocabulary of emotion words (shipped, sourced; or a user's);
- :mod:`~openmer.discovery.naming`: text alignments and a cluster's top names;
- :mod:`~openmer.discovery.core`: ``openmer discover`` (:func:`discover`, :func:`write_discovery`);
- :mod:`~openmer.discovery.enrol`: ``openmer enrol`` (a new known class in a new run folder).
"""

from openmer.discovery.cluster import Clustering, cluster_rejected
from openmer.discovery.core import Discovery, discover, write_discovery
from openmer.discovery.naming import RidgeAlignment, name_clusters
from openmer.discovery.sources import clip_manifest
from openmer.discovery.words import Vocabulary, default_vocabulary, read_word_list

__all__ = ["Clustering", "Discovery", "RidgeAlignment", "Vocabulary", "clip_manifest", "cluster_rejected",
           "default_vocabulary", "discover", "name_clusters", "read_word_list", "write_discovery"]
