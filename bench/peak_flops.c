// Peak arithmetic rate of one core, for the roofline in bench/README.md: FP32 FMA (AVX-512, AVX2) and BF16
// dot products (AVX512_BF16 VDPBF16PS), 12 independent accumulators and no memory traffic.
// Build and run: clang -O2 bench/peak_flops.c -o /tmp/peak_flops && /tmp/peak_flops (make bench-peak). Use clang:
// gcc -O2 keeps the accumulator array in memory and reports under half the peak.
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((target("avx512f"))) double fma512(long n){
  __m512 a[12]; __m512 x=_mm512_set1_ps(1.0000001f), y=_mm512_set1_ps(0.999999f);
  for(int i=0;i<12;i++)a[i]=_mm512_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm512_fmadd_ps(a[i],x,y); }
  t=now()-t; float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]);
  if(s==1.2345f)printf("x");
  return 12.0*n*16*2/t/1e9;
}
__attribute__((target("avx2,fma"))) double fma256(long n){
  __m256 a[12]; __m256 x=_mm256_set1_ps(1.0000001f), y=_mm256_set1_ps(0.999999f);
  for(int i=0;i<12;i++)a[i]=_mm256_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm256_fmadd_ps(a[i],x,y); }
  t=now()-t; float s=0; float b[8]; for(int i=0;i<12;i++){_mm256_storeu_ps(b,a[i]); s+=b[0];}
  if(s==1.2345f)printf("x");
  return 12.0*n*8*2/t/1e9;
}
__attribute__((target("avx512f,avx512bf16"))) double bf16(long n){
  __m512 a[12]; __m512bh x=(__m512bh)_mm512_set1_epi32(0x3f803f80), y=(__m512bh)_mm512_set1_epi32(0x3f7f3f7f);
  for(int i=0;i<12;i++)a[i]=_mm512_set1_ps(i);
  double t=now();
  for(long k=0;k<n;k++){ for(int i=0;i<12;i++) a[i]=_mm512_dpbf16_ps(a[i],x,y); }
  t=now()-t; float s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_ps(a[i]);
  if(s==1.2345f)printf("x");
  return 12.0*n*32*2/t/1e9;
}
int main(){ long n=200000000/12; fma512(n/10);
  printf("fp32 avx512 FMA: %.1f GFLOP/s per core\n", fma512(n));
  printf("fp32 avx2 FMA:   %.1f GFLOP/s per core\n", fma256(n));
  printf("bf16 dpbf16ps:   %.1f GFLOP/s per core\n", bf16(n));
  return 0; }
