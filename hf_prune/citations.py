"""BibTeX entries of the papers behind hf_prune's methods, for the `citation` attribute of strategies and policies and
for cards. One entry per paper, shared by the methods that come from it."""

from __future__ import annotations


def bibtex(kind: str, key: str, **fields: str) -> str:
    """A BibTeX entry `@kind{key, field = {value}, ...}` with aligned fields."""
    width = max(len(k) for k in fields)
    body = ",\n".join(f"  {k:<{width}} = {{{v}}}" for k, v in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}"


DYN_UNC = bibtex(
    "article",
    "he2023large",
    title="Large-scale Dataset Pruning with Dynamic Uncertainty",
    author="He, Muyang and Yang, Shuo and Huang, Tiejun and Zhao, Bo",
    journal="arXiv preprint arXiv:2306.05175",
    year="2023",
)
DATA_DIET = bibtex(
    "inproceedings",
    "paul2021deep",
    title="Deep Learning on a Data Diet: Finding Important Examples Early in Training",
    author="Paul, Mansheej and Ganguli, Surya and Dziugaite, Gintare Karolina",
    booktitle="Advances in Neural Information Processing Systems",
    year="2021",
)
CARTOGRAPHY = bibtex(
    "inproceedings",
    "swayamdipta2020dataset",
    title="Dataset Cartography: Mapping and Diagnosing Datasets with Training Dynamics",
    author="Swayamdipta, Swabha and Schwartz, Roy and Lourie, Nicholas and Wang, Yizhong and Hajishirzi, Hannaneh"
    " and Smith, Noah A. and Choi, Yejin",
    booktitle="Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing",
    year="2020",
)
FORGETTING = bibtex(
    "inproceedings",
    "toneva2019empirical",
    title="An Empirical Study of Example Forgetting during Deep Neural Network Learning",
    author="Toneva, Mariya and Sordoni, Alessandro and Combes, Remi Tachet des and Trischler, Adam and "
    "Bengio, Yoshua and Gordon, Geoffrey J.",
    booktitle="International Conference on Learning Representations",
    year="2019",
)
AUM = bibtex(
    "inproceedings",
    "pleiss2020identifying",
    title="Identifying Mislabeled Data using the Area Under the Margin Ranking",
    author="Pleiss, Geoff and Zhang, Tianyi and Elenberg, Ethan and Weinberger, Kilian Q.",
    booktitle="Advances in Neural Information Processing Systems",
    year="2020",
)
SELECTION_VIA_PROXY = bibtex(
    "inproceedings",
    "coleman2020selection",
    title="Selection via Proxy: Efficient Data Selection for Deep Learning",
    author="Coleman, Cody and Yeh, Christopher and Mussmann, Stephen and Mirzasoleiman, Baharan and "
    "Bailis, Peter and Liang, Percy and Leskovec, Jure and Zaharia, Matei",
    booktitle="International Conference on Learning Representations",
    year="2020",
)
CCS = bibtex(
    "inproceedings",
    "zheng2023coverage",
    title="Coverage-centric Coreset Selection for High Pruning Rates",
    author="Zheng, Haizhong and Liu, Rui and Lai, Fan and Prakash, Atul",
    booktitle="International Conference on Learning Representations",
    year="2023",
)
MODERATE = bibtex(
    "inproceedings",
    "xia2023moderate",
    title="Moderate Coreset: A Universal Method of Data Selection for Real-world Data-efficient Deep Learning",
    author="Xia, Xiaobo and Liu, Jiale and Yu, Jun and Shen, Xu and Han, Bo and Liu, Tongliang",
    booktitle="International Conference on Learning Representations",
    year="2023",
)
SSP = bibtex(
    "inproceedings",
    "sorscher2022beyond",
    title="Beyond neural scaling laws: beating power law scaling via data pruning",
    author="Sorscher, Ben and Geirhos, Robert and Shekhar, Shashank and Ganguli, Surya and Morcos, Ari S.",
    booktitle="Advances in Neural Information Processing Systems",
    year="2022",
)
DYNAMIC_DATA_PRUNING = bibtex(
    "article",
    "raju2021accelerating",
    title="Accelerating Deep Learning with Dynamic Data Pruning",
    author="Raju, Ravi S. and Daruwalla, Kyle and Lipasti, Mikko",
    journal="arXiv preprint arXiv:2111.12621",
    year="2021",
)
INFOBATCH = bibtex(
    "inproceedings",
    "qin2024infobatch",
    title="InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning",
    author="Qin, Ziheng and Wang, Kai and Zheng, Zangwei and Gu, Jianyang and Peng, Xiangyu and Xu, Zhaopan and "
    "Zhou, Daquan and Shang, Lei and Sun, Baigui and Xie, Xuansong and You, Yang",
    booktitle="International Conference on Learning Representations",
    year="2024",
)
RS2 = bibtex(
    "inproceedings",
    "okanovic2024repeated",
    title="Repeated Random Sampling for Minimizing the Time-to-Accuracy of Learning",
    author="Okanovic, Patrik and Waleffe, Roger and Mageirakos, Vasilis and Nikolakakis, Konstantinos and "
    "Karbasi, Amin and Kalogerias, Dionysios and G{\\\"u}rel, Nezihe Merve and Rekatsinas, Theodoros",
    booktitle="International Conference on Learning Representations",
    year="2024",
)
SETA = bibtex(
    "inproceedings",
    "zhou2025scale",
    title="Scale Efficient Training for Large Datasets",
    author="Zhou, Qing and Gao, Junyu and Wang, Qi",
    booktitle="Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition",
    year="2025",
)
DUAL = bibtex(
    "inproceedings",
    "cho2025lightweight",
    title="Lightweight Dataset Pruning without Full Training via Example Difficulty and Prediction Uncertainty",
    author="Cho, Yeseul and Shin, Baekrok and Kang, Changmin and Yun, Chulhee",
    booktitle="Proceedings of the 42nd International Conference on Machine Learning",
    year="2025",
)
S2L = bibtex(
    "inproceedings",
    "yang2024smalltolarge",
    title="SmallToLarge (S2L): Scalable Data Selection for Fine-tuning Large Language Models by Summarizing Training "
    "Trajectories of Small Models",
    author="Yang, Yu and Mishra, Siddhartha and Chiang, Jeffrey N. and Mirzasoleiman, Baharan",
    booktitle="Advances in Neural Information Processing Systems",
    year="2024",
)
