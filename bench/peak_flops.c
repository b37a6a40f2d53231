// Peak arithmetic rate of one core, for the roofline in bench/README.md: FP32 FMA (AVX-512, AVX2), BF16 dot
// products (AVX512_BF16 VDPBF16PS) and int8 dot products (AVX512-VNNI / AVX-VNNI VPDPBUSD, AVX2 VPMADDUBSW
// into 16-bit sums), 12 independent accumulators and no memory traffic. Each line runs only where the CPU has
// the instructions (the others say so), so it runs on any x86-64.
// Build and run: clang -O2 bench/peak_flops.c -o /tmp/peak_flops && /tmp/peak_flops (make bench-peak). Use clang:
// gcc -O2 keeps the accumulator array in memory and reports under half the peak.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
// Each kernel: 12 chains of n steps; returns GFLOP/s counting a multiply-add as 2.
#define CHAINS(T, INIT, STEP, LANES_X2, FOLD) \
  T a[12]; for(int i=0;i<12;i++) a[i]=INIT; \
  double t=now(); for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=STEP; } t=now()-t; \
  int s=0; for(int i=0;i<12;i++) s+=FOLD; if(s==12345)printf("x"); \
  return 12.0*n*(LANES_X2)/t/1e9;
__attribute__((target("avx512f"))) static double fma512(long n){
  __m512 x=_mm512_set1_ps(1.0000001f), y=_mm512_set1_ps(0.999999f);
  CHAINS(__m512, _mm512_set1_ps(i), _mm512_fmadd_ps(a[i],x,y), 16*2, (int)_mm512_reduce_add_ps(a[i]))
}
__attribute__((target("avx2,fma"))) static double fma256(long n){
  __m256 x=_mm256_set1_ps(1.0000001f), y=_mm256_set1_ps(0.999999f);
  CHAINS(__m256, _mm256_set1_ps(i), _mm256_fmadd_ps(a[i],x,y), 8*2, (int)_mm256_cvtss_f32(a[i]))
}
__attribute__((target("avx512f,avx512bf16"))) static double bf16(long n){
  __m512bh x=(__m512bh)_mm512_set1_epi32(0x3f803f80), y=(__m512bh)_mm512_set1_epi32(0x3f7f3f7f);
  CHAINS(__m512, _mm512_set1_ps(i), _mm512_dpbf16_ps(a[i],x,y), 32*2, (int)_mm512_reduce_add_ps(a[i]))
}
__attribute__((target("avx512f,avx512vnni"))) static double vnni512(long n){
  __m512i x=_mm512_set1_epi8(3), y=_mm512_set1_epi8(1);
  CHAINS(__m512i, _mm512_set1_epi32(i), _mm512_dpbusd_epi32(a[i],x,y), 64*2, _mm512_reduce_add_epi32(a[i]))
}
__attribute__((target("avx2,avxvnni"))) static double vnni256(long n){
  __m256i x=_mm256_set1_epi8(3), y=_mm256_set1_epi8(1);
  CHAINS(__m256i, _mm256_set1_epi32(i), _mm256_dpbusd_avx_epi32(a[i],x,y), 32*2, _mm256_extract_epi32(a[i],0))
}
// AVX2 has no int8 dot: VPMADDUBSW (u8 x s8 pair sums in 16 bits) added in 16 bits, as gemm_i8.c's AVX2 path.
__attribute__((target("avx2"))) static double maddubs256(long n){
  __m256i y=_mm256_set1_epi8(1);
  CHAINS(__m256i, _mm256_set1_epi16(i), _mm256_add_epi16(a[i],_mm256_maddubs_epi16(a[i],y)), 32*2, _mm256_extract_epi16(a[i],0))
}
static void line(const char *name, int has, double (*f)(long), long n){
  if(has) printf("%-34s %.1f GFLOP/s per core\n", name, f(n)); else printf("%-34s (this CPU lacks it)\n", name);
}
int main(void){ long n=200000000/12;
  __builtin_cpu_init();
  const int a512=__builtin_cpu_supports("avx512f"), a2=__builtin_cpu_supports("avx2")&&__builtin_cpu_supports("fma");
  if(a2) fma256(n/10);  // warm-up (clocks up)
  line("fp32 avx512 FMA:", a512, fma512, n);
  line("fp32 avx2 FMA:", a2, fma256, n);
  line("bf16 avx512_bf16 dpbf16ps:", a512&&__builtin_cpu_supports("avx512bf16"), bf16, n);
  line("int8 avx512_vnni dpbusd:", a512&&__builtin_cpu_supports("avx512vnni"), vnni512, n);
  line("int8 avx_vnni dpbusd:", a2&&__builtin_cpu_supports("avxvnni"), vnni256, n);
  line("int8 avx2 maddubs + 16-bit add:", a2, maddubs256, n);
  return 0; }
